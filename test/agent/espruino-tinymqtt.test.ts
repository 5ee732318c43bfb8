// The real tinymqtt under the real agent on the Espruino interpreter (ESPRUINO names it), both loaded from Storage,
// against the scripted broker on a loopback port (test/agent/helpers.ts): the agent-over-tinymqtt cases of
// test/agent/tinymqtt.test.ts that run in real time. Skipped without ESPRUINO.
import test from 'ava';
import { createServer, type Server } from 'node:net';
import { espruino, skipMessage, scratch, storageWriteBundle, runScript } from '../helpers/espruino.ts';
import { tcpScriptedBroker, decode } from './helpers.ts';

const run = espruino ? test.serial : test.skip;
if (!espruino) console.log('agent over tinymqtt on Espruino: ' + skipMessage);

const isReport = (p: any) => /\/defender\/metrics\/cbor$/.test(p.topic);

/** A TCP server that takes what it is sent and says nothing (so only bytes out are counted). */
async function sink(): Promise<{ port: number; server: Server }> {
  const server = createServer((s) => {
    s.on('data', () => {});
    s.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as any).port, server };
}

async function modules(): Promise<string> {
  const dir = scratch();
  await runScript(dir, storageWriteBundle('tinymqtt') + storageWriteBundle('defender') + 'console.log("WRITTEN");\n');
  return dir;
}

run('network stats of a report whose publish failed go in the next report (Espruino)', async (t) => {
  let first = true;
  const broker = await tcpScriptedBroker((p) => {
    if (isReport(p) && first) {
      first = false;
      return 'ignore';
    }
    return 'ack';
  });
  const app = await sink();
  try {
    const dir = await modules();
    // tinymqtt gives up on the ignored report after 1 s (timeout 1, no resend); the application writes 100 bytes
    // before the first report, 10 after its failure, 5 after the second report's PUBACK
    const r = await runScript(
      dir,
      `
var d = require("defender"), started = 0, n = 0;
var app = d.track(require("net")).connect({ host: "127.0.0.1", port: ${app.port} }, function () { app.write(new Uint8Array(100)); });
var c = require("tinymqtt").create("127.0.0.1", { port: ${broker.port}, client_id: "esp-carry", timeout: 1, retries: 0 });
var pub = c.publish;
c.publish = function (t, m, q, cb) {
  return pub.call(c, t, m, q, function (e) {
    n++;
    console.log("PUBLISHED " + n + " " + (e ? "failed" : "ok"));
    if (n === 1) app.write(new Uint8Array(10));
    if (n === 2) app.write(new Uint8Array(5));
    cb(e);
    if (n === 3) { d.stop(); c.disconnect(); app.end(); }
  });
};
c.on("error", function () {});
c.on("connected", function () {
  if (!started++) console.log("START " + d.start({ mqtt: c, thingName: "esp-carry", period: 2, minPeriod: 1,
    callback: function (ev) { console.log("EVENT " + ev.type + " " + ev.message); } }));
});
c.connect();
`,
      40000,
    );
    t.regex(r.out, /START 0/, r.out);
    t.regex(r.out, /PUBLISHED 1 failed[\s\S]*EVENT 3 [\s\S]*PUBLISHED 2 ok[\s\S]*PUBLISHED 3 ok/, r.out);
    const stats = broker.reports.map((x) => ({ verdict: x.verdict, bo: decode(x.packet.payload, false).met.ns.bo, po: decode(x.packet.payload, false).met.ns.po }));
    t.deepEqual(stats.slice(0, 3), [
      { verdict: 'ignore', bo: 100, po: 1 },
      { verdict: 'ack', bo: 110, po: 2 },
      { verdict: 'ack', bo: 5, po: 1 },
    ]);
  } finally {
    app.server.close();
    await broker.close();
  }
});

run('a flapping connection: each response topic subscribed once per session (Espruino)', async (t) => {
  let acked = 0;
  const broker = await tcpScriptedBroker((p) => {
    if (isReport(p)) acked++;
    return 'ack';
  });
  // the broker closes the connection after each acknowledged report, 4 times
  const timer = setInterval(() => {
    if (acked > broker.connections.length - 1 && broker.connections.length <= 4) broker.drop();
  }, 100);
  try {
    const dir = await modules();
    const r = await runScript(
      dir,
      `
var d = require("defender"), started = 0;
var c = require("tinymqtt").create("127.0.0.1", { port: ${broker.port}, client_id: "esp-flap", reconnect_min: 0.2, reconnect_max: 0.5 });
c.on("error", function () {});
c.on("connected", function () {
  if (!started++) console.log("START " + d.start({ mqtt: c, thingName: "esp-flap", period: 1, minPeriod: 1, callback: function () {} }));
});
c.connect();
setTimeout(function () { d.stop(); c.disconnect(); }, 12000);
`,
      40000,
    );
    t.regex(r.out, /START 0/, r.out);
    t.true(broker.connections.length >= 4, `${broker.connections.length} connections`);
    broker.connections.forEach((packets, i) => {
      const topics = packets.filter((p) => p.cmd === 'subscribe').flatMap((p) => p.subscriptions.map((s: any) => s.topic)).sort();
      t.deepEqual(topics, ['$aws/things/esp-flap/defender/metrics/cbor/accepted', '$aws/things/esp-flap/defender/metrics/cbor/rejected'], `connection ${i}`);
    });
    t.true(acked >= 5, `${acked} reports acknowledged`);
  } finally {
    clearInterval(timer);
    await broker.close();
  }
});
