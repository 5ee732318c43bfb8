// The metrics core on a real Espruino interpreter (ESPRUINO names it), against the same bundle on Node: one
// script drives track() and writeReport() through connections, data, listening ports, UDP and custom metrics
// (integers past 32 bits, floats, strings, addresses), in both formats, both tag styles, and into a buffer too
// small for the whole document, and malformed custom metrics. Every report must come out the same on both (CBOR
// byte for byte; JSON parsed to the same values). Skipped without ESPRUINO.
import test from 'ava';
import * as cborg from 'cborg';
import { loadBundle } from './bundle.ts';
import { espruino, skipMessage, scratch, storageWriteBundle, runScript } from '../helpers/espruino.ts';

const run = espruino ? test : test.skip;
if (!espruino) console.log('metrics core on Espruino: ' + skipMessage);

/** The scenario: plain ES5 that runs as is on Espruino and on Node; prints one line per report. */
const scenario = `
function Emitter() { this.l = {}; }
Emitter.prototype.on = function (e, f) { (this.l[e] = this.l[e] || []).push(f); return this; };
Emitter.prototype.emit = function (e, a) { var l = this.l[e] || []; for (var i = 0; i < l.length; i++) l[i].call(this, a); };
function Sock() { this.l = {}; }
Sock.prototype = new Emitter();
Sock.prototype.write = function () { return true; };
Sock.prototype.end = function () {};
Sock.prototype.listen = function () { return this; };
Sock.prototype.bind = function () { return this; };
Sock.prototype.close = function () {};
Sock.prototype.send = function () {};
var mock = {
  connect: function () { return new Sock(); },
  createServer: function () { return new Sock(); },
  createSocket: function () { return new Sock(); },
};
var t = d.track(mock);
var socks = [];
var ips = ["10.0.0.1", "192.168.1.254", "255.255.255.255", "1.2.3.4", "172.16.0.9", "8.8.8.8", "127.0.0.1", "100.64.0.1", "9.9.9.9"];
for (var i = 0; i < ips.length; i++) {
  var s = t.connect({ host: ips[i], port: 1 + i * 7000 });
  s.emit("connect");
  socks.push(s);
}
socks[0].write("hello"); socks[1].emit("data", "abc"); socks[2].write("x");
socks[3].emit("close", false);
var srv = t.createServer(); srv.listen(8080); var srv2 = t.createServer(); srv2.listen(65535);
var u = t.createSocket("udp4"); u.bind(5353); u.send("q"); u.emit("message", "answer");
var custom = {
  "temperature": { number: 21.5 },
  "uptime_ms": { number: 4102444800123 },
  "negative": { number: -2147483649 },
  "counts": { number_list: [0, 1, 23, 24, 255, 256, 65535, 65536, 4294967295, 4294967296, 9007199254740991] },
  "names": { string_list: ["a", "quote\\"and\\\\back", "tab\\tnl\\n"] },
  "peers": { ip_list: ["10.1.2.3", "2001:db8::1"] }
};
function hex(b, n) { var s = ""; for (var i = 0; i < n; i++) s += (b[i] < 16 ? "0" : "") + b[i].toString(16); return s; }
var buf = new Uint8Array(1024), info = [0, 0];
var combos = [[false, false], [false, true], [true, false], [true, true]];
for (var k = 0; k < combos.length; k++) {
  var n = d.writeReport(buf, combos[k][0], combos[k][1], 0xffffffff, 1795587685174 + k, custom, info);
  console.log("REPORT " + k + " " + n + " " + info[0] + " " + info[1] + " " + hex(buf, n > 0 ? n : 0));
}
var small = new Uint8Array(350);
for (var k = 0; k < 2; k++) {
  var n = d.writeReport(small, k === 1, false, 0xffffffff, 7, custom, info);
  console.log("SMALL " + k + " " + n + " " + info[0] + " " + hex(small, n > 0 ? n : 0));
  // the agent's way: a size, and the document back as a byte string
  var doc = d.writeReport(350, k === 1, false, 0xffffffff, 7, custom, info), same = typeof doc === "string" && doc.length === n;
  for (var i = 0; same && i < n; i++) same = doc.charCodeAt(i) === small[i];
  console.log("SIZED " + k + " " + same + " " + info[0]);
}
console.log("TINY " + d.writeReport(new Uint8Array(20), false, false, 0xffffffff, 7, null, info));
var bad = [5, "x", null, [1], { a: 5 }, { a: { number: "x" } }, function () { return 7; }, function () { throw new Error("boom"); }, true];
for (var k = 0; k < bad.length; k++) console.log("BAD " + k + " " + d.writeReport(buf, k % 2 === 1, false, 0xffffffff, 7, bad[k]));
`;

/** The scenario's output on Node, from a fresh instance of the bundle. */
function onNode(): string {
  let out = '';
  const console = { log: (s: string) => (out += s + '\n') };
  new Function('d', 'console', scenario)(loadBundle(), console);
  return out;
}

function parse(out: string) {
  return [...out.matchAll(/^(REPORT|SMALL) (\d) (-?\d+) (\d+)(?: \d+)? ([0-9a-f]*)\r?$/gm)].map((m) => ({ what: m[1] + m[2], n: Number(m[3]), dropped: Number(m[4]), bytes: Buffer.from(m[5], 'hex') }));
}

run('the same reports on Espruino as on Node, in every format, tag style and buffer size', async (t) => {
  const dir = scratch();
  await runScript(dir, storageWriteBundle('defender') + 'console.log("WRITTEN");\n');
  const r = await runScript(dir, 'var m0 = process.memory().usage;\nvar d = require("defender");\nconsole.log("JSVARS " + (process.memory().usage - m0));\n' + scenario, 60000);
  const esp = parse(r.out);
  const nodeOut = onNode();
  const node = parse(nodeOut);
  t.is(esp.length, 6, r.out);
  t.is(node.length, 6);
  for (let i = 0; i < node.length; i++) {
    const [e, n] = [esp[i], node[i]];
    t.is(e.n, n.n, `${n.what}: length`);
    t.is(e.dropped, n.dropped, `${n.what}: entries dropped`);
    const json = n.what === 'REPORT2' || n.what === 'REPORT3' || n.what === 'SMALL1';
    if (json) t.deepEqual(JSON.parse(e.bytes.toString('utf8')), JSON.parse(n.bytes.toString('utf8')), n.what);
    else {
      t.deepEqual(e.bytes, n.bytes, `${n.what}: CBOR byte for byte`);
      t.notThrows(() => cborg.decode(e.bytes, { strict: true, useMaps: false }));
    }
  }
  t.true(node[4].dropped > 0 && node[5].dropped > 0, 'the small buffer drops entries');
  t.regex(r.out, /TINY -1/);
  t.deepEqual([...r.out.matchAll(/^SIZED \d (\w+) (\d+)/gm)].map((m) => [m[1], Number(m[2])]), [['true', node[4].dropped], ['true', node[5].dropped]], 'a size instead of a buffer: the same bytes, as a string');
  const bad = (out: string) => [...out.matchAll(/^BAD \d+ -?\d+/gm)].map((m) => m[0]);
  t.is(bad(r.out).length, 9, r.out);
  t.deepEqual(bad(r.out), bad(nodeOut), 'malformed custom metrics: the same result (-3, or a report without them for null)');
  t.log(/JSVARS \d+/.exec(r.out)?.[0] + ' (require("defender") from Storage)');
});

// Every style's runs stay where the module lies (flash, from Storage), read a run at a time: a report in the
// styles other than the default used to need 146 to 178 JsVars free, its runs copied into RAM, and now needs
// 116 to 130 (the default 98), with two connections being opened.
run('a report in every format and tag style is written with 140 JsVars free', async (t) => {
  const dir = scratch();
  await runScript(dir, storageWriteBundle('defender') + 'console.log("WRITTEN");\n');
  const r = await runScript(
    dir,
    `
var d = require("defender"), buf = new Uint8Array(1024), fill = [], t, n, style;
function Sock() {}
Sock.prototype.on = function () { return this; };
Sock.prototype.write = function () { return true; };
Sock.prototype.end = function () {};
t = d.track({ connect: function () { return new Sock(); } });
t.connect({ host: "10.0.0.1", port: 8883 });
t.connect({ host: "10.0.0.2", port: 8883 });
function write() {
  for (;;) {
    n = process.memory().free - 140;
    if (n <= 0) break;
    fill.push(new Uint8Array(n > 60 ? (n - 40) * 10 : 4));
  }
  n = d.writeReport(buf, style >> 1, style & 1, 0x1ff, 1795587685174, null);
  console.log("STYLE " + style + " " + n);
  fill = [];
  if (++style < 4) setTimeout(write, 10);
}
style = 0;
setTimeout(write, 10);
`,
    30000,
  );
  const written = [...r.out.matchAll(/STYLE (\d) (-?\d+)/g)].map((m) => [Number(m[1]), Number(m[2]) > 0]);
  t.deepEqual(written, [[0, true], [1, true], [2, true], [3, true]], r.out);
  t.notRegex(r.out, /MEMORY/, r.out);
});
