// The agent in build/defender.js on a real Espruino interpreter (ESPRUINO names it): loaded from Storage, driven
// by a mock client written in the script (answers in CBOR built by hand), 100 reports at 0.2 s: events decoded,
// report ids increasing and reserved in Storage, no memory growth between 10 and 100 reports. Also what
// require("defender") costs (docs/memory.md), and that a stopped agent gives its memory back.
// Skipped without ESPRUINO.
import test from 'ava';
import { espruino, skipMessage, scratch, storageWriteBundle, runScript } from '../helpers/espruino.ts';

const run = espruino ? test : test.skip;
if (!espruino) console.log('agent on Espruino: ' + skipMessage);

const script = `
var m0 = process.memory().usage;
var d = require("defender");
var subs = [], n = 0, count = 0, last = 0, bad = 0; // no list of ids: the script must not grow either
function u64(v) { var s = ""; for (var i = 0; i < 8; i++) { s = String.fromCharCode(v % 256) + s; v = Math.floor(v / 256); } return "\\x1b" + s; }
var c = {
  subscribe: function (t, q, cb) { subs.push(t); cb(); },
  unsubscribe: function (t) { subs.push("-" + t); },
  publish: function (t, m, q, cb) {
    // the report id: the integer after the key "rid" of the CBOR report
    var s = E.toString(m), i = s.indexOf("rid") + 3, b = s.charCodeAt(i), a = b & 31, l = a < 24 ? 0 : 1 << (a - 24), v = l ? 0 : a;
    for (var k = 1; k <= l; k++) v = v * 256 + s.charCodeAt(i + k);
    if (count && v <= last) bad++;
    last = v;
    count++;
    cb();
    var rej = count % 3 === 0;
    // answered at once: on a loaded machine a delayed answer can fall out of the agent's window of 4 ids
    c.emit("message", { topic: t + (rej ? "/rejected" : "/accepted"), message: (rej ? "\\xa3" : "\\xa2") + "\\x68reportId" + u64(v) +
      "\\x66status" + (rej ? "\\x68REJECTED\\x6dstatusDetails\\xa2\\x69ErrorCode\\x69Throttled\\x6cErrorMessage\\x62hi" : "\\x68ACCEPTED") });
  },
};
var seen = {};
var rc = d.start({ mqtt: c, thingName: "esp-1", minPeriod: 0.2, period: 0.2, slots: 8, callback: function (ev) {
  n++;
  var k = ev.type + ":" + ev.code + ":" + ev.message;
  if (!seen[k]) { seen[k] = 1; console.log("EVENT " + k); }
  if (n === 10) console.log("AT10 " + (process.memory().usage - m0));
  if (n === 100) {
    console.log("AT100 " + (process.memory().usage - m0));
    console.log("IDS " + count + " " + bad + " " + (+require("Storage").read("defender.rid") >= last));
    console.log("STOP " + d.stop() + " " + subs.join(","));
  }
} });
console.log("START " + rc + " " + d.strerror(rc) + " " + d.start({ mqtt: c, thingName: "x" }) + " " + d.setPeriod(0.1) + " " + d.start);
`;

run('agent loads from Storage and reports on Espruino: events, ids, no memory growth', async (t) => {
  const dir = scratch();
  await runScript(dir, storageWriteBundle('defender') + 'console.log("WRITTEN");\n');
  const r = await runScript(dir, script, 60000);
  t.regex(r.out, /START 0 SUCCESS 2 3/, r.out);
  t.regex(r.out, /EVENT 1:0:/);
  t.regex(r.out, /EVENT 2:Throttled:hi/);
  t.notRegex(r.out, /EVENT [3-8]:/, 'no failure or unexpected-response event');
  t.regex(r.out, /IDS 100 0 true/, 'ids strictly increase and Storage holds one above them');
  t.regex(r.out, /STOP 0 .*-\$aws\/things\/esp-1\/defender\/metrics\/cbor\/accepted,-\$aws\/things\/esp-1\/defender\/metrics\/cbor\/rejected/);
  const at10 = Number(/AT10 (\d+)/.exec(r.out)?.[1]);
  const at100 = Number(/AT100 (\d+)/.exec(r.out)?.[1]);
  t.log(`JsVars after require + 10 reports: ${at10}, after 100: ${at100}`);
  t.true(at100 <= at10, `no growth: ${at10} -> ${at100}`);
});

const memoryScript = `
var m0 = process.memory().usage;
var d = require("defender");
console.log("REQUIRE " + (process.memory().usage - m0));
var l = {};
var c = {
  on: function (e, f) { (l[e] = l[e] || []).push(f); },
  removeListener: function (e, f) { var a = l[e], i = a ? a.indexOf(f) : -1; if (i >= 0) a.splice(i, 1); },
  subscribe: function (t, q, cb) { cb(); },
  unsubscribe: function () {},
  publish: function (t, m, q, cb) { cb(); },
};
function cycle() {
  d.start({ mqtt: c, thingName: "mem", callback: function () {}, minPeriod: 1, period: 1 });
  d.report();
  d.stop();
}
var i;
for (i = 0; i < 5; i++) cycle();
var m1 = process.memory().usage;
for (i = 0; i < 20; i++) cycle();
console.log("AFTER20 " + (process.memory().usage - m1));
for (i = 0; i < 40; i++) cycle();
console.log("AFTER60 " + (process.memory().usage - m1));
`;

run('require("defender") costs at most 250 JsVars, and start/stop cycles do not grow memory', async (t) => {
  const dir = scratch();
  await runScript(dir, storageWriteBundle('defender') + 'console.log("WRITTEN");\n');
  const r = await runScript(dir, memoryScript, 60000);
  const req = Number(/REQUIRE (\d+)/.exec(r.out)?.[1]);
  const a20 = Number(/AFTER20 (-?\d+)/.exec(r.out)?.[1]);
  const a60 = Number(/AFTER60 (-?\d+)/.exec(r.out)?.[1]);
  t.log(`require: ${req} JsVars; after 20 and 60 more start/report/stop cycles: ${a20}, ${a60}`);
  t.true(req > 0 && req <= 250, r.out);
  t.true(a60 <= a20 && a20 <= 8, `${a20} -> ${a60}`);
});

// The application restarts the agent from its callback when slots overflow, while the agent is writing a report
// (its numbers live in the metrics core's array, shared by both runs): the stopped run publishes nothing more, and
// the new run reports on, not left busy by the old one.
const restartScript = `
var d = require("defender"), pubs = 0, restarted = 0;
var c = { subscribe: function (t, q, cb) { cb(); }, unsubscribe: function () {}, publish: function (t, m, q, cb) { pubs++; cb(); } };
var net = d.track({ connect: function () { return { write: function () { return true; }, end: function () {} }; } });
function options() { return { mqtt: c, thingName: "esp-1", minPeriod: 0.2, period: 0.2, slots: 1, callback: onEvent }; }
function onEvent(e) {
  if (e.type !== 7 || restarted++) return;
  d.stop();
  console.log("RESTARTED " + d.start(options()));
  setTimeout(function () { console.log("PUBLISHED BY THE STOPPED RUN " + pubs); }, 0);
}
d.start(options());
net.connect({ host: "10.0.0.1", port: 1000 }).emit("connect");
net.connect({ host: "10.0.0.2", port: 1001 }).emit("connect");
setTimeout(function () { console.log("PUBLISHED " + pubs); d.stop(); }, 1300);
`;

run('stopped and started again from its callback while it writes a report: the new run reports on Espruino', async (t) => {
  const dir = scratch();
  await runScript(dir, storageWriteBundle('defender') + 'console.log("WRITTEN");\n');
  const r = await runScript(dir, restartScript, 20000);
  t.regex(r.out, /RESTARTED 0/, r.out);
  t.regex(r.out, /PUBLISHED BY THE STOPPED RUN 0/, r.out);
  const published = Number(/PUBLISHED (\d+)/.exec(r.out)?.[1]);
  t.true(published >= 3, `the new run reported ${published} times in about 1 s at a 0.2 s period`);
});
