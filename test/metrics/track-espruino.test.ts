// track() on a real Espruino interpreter (ESPRUINO names it), build/defender.js required from Storage, against real
// sockets: a tracked server answering with the README's c.end("hi"), tracked net and tls clients connecting with
// the URL form Espruino's own connect takes (so a library calling the global net or tls, which the firmware replaces
// with tracked ones, keeps working), and the stand-in a hostname gets until it resolves, with the methods Espruino's
// socket has (and those it has not: skipped, never thrown). Skipped without ESPRUINO.
import test from 'ava';
import { readFileSync } from 'node:fs';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { espruino, skipMessage, scratch, storageWriteBundle, runScript } from '../helpers/espruino.ts';
import { makePki } from '../helpers/certs.ts';
import { freePort } from '../helpers/net.ts';

const run = espruino ? test : test.skip;
if (!espruino) console.log('track() on Espruino: ' + skipMessage);

/** ES5 for the interpreter: prints REPORT lines (the JSON report, long tags) and EVENT lines. */
function scenario(espPort: number, netPort: number, tlsPort: number): string {
  return `
var d = require("defender");
var raw = require("net");
var net = d.track(raw), tls = d.track(require("tls"));
var buf = new Uint8Array(2048), info = [0, 0];
function report(tag) {
  var n = d.writeReport(buf, true, true, 0x1ff, 1, null, info);
  console.log("REPORT " + tag + " " + E.toString(buf.subarray(0, n > 0 ? n : 0)));
}
function event(s) { console.log("EVENT " + s); }
report("before");
report("again");
var steps, step = 0;
function next() { setTimeout(steps[step++], 50); }

// the README's example: a tracked server that answers with end("hi"), and an untracked client
var srv;
function serverEndsWithData() {
  srv = net.createServer(function (c) { c.end("hi"); });
  srv.listen(${espPort});
  setTimeout(function () {
    // the server listens once the event loop turns
    var c = raw.connect({ host: "127.0.0.1", port: ${espPort} });
    c.on("data", function (x) { event("raw client got " + x); });
    c.on("close", function () { next(); });
  }, 50);
}

// connect(url, cb), as Espruino's own connect takes it: write, then end with data on the echo
function netUrl() {
  var c = net.connect("http://127.0.0.1:${netPort}/", function () {
    report("netUrl connected");
    report("probe"); // shows whether a report restarts the network stats (the server's end("hi") is in them)
    c.write("ping");
  });
  c.on("data", function (x) { event("net got " + x); if (x === "ping") c.end("bye!"); });
  c.on("close", function () { next(); });
}
function tlsUrl() {
  var c = tls.connect("https://127.0.0.1:${tlsPort}/", function () { report("tlsUrl connected"); c.write("tls!"); });
  c.on("data", function (x) { event("tls got " + x); c.end(); });
  c.on("close", function () { next(); });
}

// a hostname: every method the stand-in offers, before the name resolves
function standIn() {
  var named = d.track(raw, function (host, cb) { setTimeout(function () { cb("127.0.0.1"); }, 20); });
  var s = named.connect({ host: "echo.test", port: ${netPort} }, function () { event("stand-in connected"); });
  function removed() { event("removed listener called"); }
  try {
    s.on("custom", function (x) { event("custom " + x); });
    s.emit("custom", 1);
    s.on("data", removed);
    s.removeListener("data", removed);
    s.on("x", removed);
    s.removeAllListeners("x");
    s.emit("x");
    s.once("data", removed); // Espruino's socket has no once: skipped
    s.setNoDelay(true); // nor setNoDelay
    s.on("data", function (x) { event("stand-in got " + x); s.destroy(); }); // nor destroy: end instead
    s.write("ping");
    s.on("close", function () { event("stand-in closed"); next(); });
    event("stand-in calls returned");
  } catch (e) {
    event("stand-in threw " + e);
    next();
  }
}
function done() { report("after"); srv.close(); }
// Espruino does not hoist function declarations: the list comes after them
steps = [serverEndsWithData, netUrl, tlsUrl, standIn, done];
next();
`;
}

run('on Espruino: end(data) counted, connect(url) through track(), the hostname stand-in with the socket\'s methods', async (t) => {
  const espPort = await freePort();
  const echo = (s: net.Socket) => s.on('error', () => {}).pipe(s);
  const plain = net.createServer(echo);
  const pki = makePki();
  const secure = tls.createServer({ key: readFileSync(pki.serverKeyFile), cert: readFileSync(pki.serverCertFile) }, echo);
  await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r));
  await new Promise<void>((r) => secure.listen(0, '127.0.0.1', r));
  const netPort = (plain.address() as net.AddressInfo).port;
  const tlsPort = (secure.address() as net.AddressInfo).port;
  const dir = scratch();
  await runScript(dir, storageWriteBundle('defender') + 'console.log("WRITTEN");\n');
  const r = await runScript(dir, scenario(espPort, netPort, tlsPort), 30000);
  plain.close();
  secure.close();
  const reports: Record<string, any> = {};
  const order: string[] = [];
  // lines may follow the console's prompt
  for (const m of r.out.matchAll(/REPORT ([a-zA-Z ]+?) (\{.*\})\r?$/gm)) {
    reports[m[1]] = JSON.parse(m[2]).metrics;
    order.push(m[1]);
  }
  const events = [...r.out.matchAll(/EVENT (.*?)\r?$/gm)].map((m) => m[1]);
  t.truthy(reports.after, r.out);

  const conns = (what: string) => reports[what].tcp_connections.established_connections;
  t.deepEqual(conns('netUrl connected').connections, [{ remote_addr: '127.0.0.1:' + netPort }], 'connect(url): listed with its address');
  t.deepEqual(conns('tlsUrl connected').connections, [{ remote_addr: '127.0.0.1:' + tlsPort }], 'tls connect(url): listed');
  t.is(conns('after').total, 0);

  t.deepEqual(events.filter((e) => !/ got /.test(e)), ['stand-in calls returned', 'custom 1', 'stand-in connected', 'stand-in closed'], r.out);
  t.true(events.includes('raw client got hi'), r.out);
  t.true(events.includes('stand-in got ping'), r.out);

  // what the scenario sent: end("hi") 2, "ping" + end("bye!") 8, "tls!" 4, the stand-in's "ping" 4
  t.true(reports['netUrl connected'].network_stats.packets_out > 0, r.out);
  const restarts = reports.probe.network_stats.packets_out === 0;
  const sent = (key: 'bytes_out' | 'packets_out') =>
    restarts ? order.reduce((sum, what) => sum + reports[what].network_stats[key], 0) : reports.after.network_stats[key] - reports.before.network_stats[key];
  t.is(sent('bytes_out'), 18, 'every write and end(data) on tracked sockets');
  t.is(sent('packets_out'), 5);
});
