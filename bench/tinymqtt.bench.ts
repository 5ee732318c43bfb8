// tinymqtt: what it costs on the board, each figure beside its target (issue 11), and publish throughput on Node.
// - Size of build/tinymqtt.js (target 4,096 bytes).
// - With ESPRUINO naming an interpreter (best the ESP32 layout, ../shared/espruino/espruino): JsVars of
//   require("tinymqtt") from Storage (target 40), and of the scenario "connected to mosquitto, one subscription,
//   one QoS 0 publish", from before the require (target 200), beside the same scenario for the peers: tinyMQTT
//   (Espruino's community client) and Espruino's MQTT module. Neither is on npm and their code is not in this
//   repository: TINYMQTT_PEER=/path/tinyMQTT.js and MQTT_PEER=/path/MQTT.js measure them in the same run;
//   without them the bench prints their published anchor figures (223 and 413, ../shared/espruino.md) and says so.
//   The process exits non-zero when a target is missed while ESPRUINO is set.
//   Also the peak of a QoS 1 publish of a 131-byte report, as the Device Defender agent sends one every period
//   (a view on the first 131 bytes of a 512-byte buffer, to a 39-byte topic): the fewest JsVars that must be
//   free, at rest after connecting, for the publish to go from the call to inside its callback without a memory
//   error. It is found by bisection: each try fills memory until only that many are free, then publishes. Unlike
//   usage read at a few points, this counts what exists only inside the call (the socket's send buffer, the
//   payload as a string, the client's call frames). Printed beside the figure before the change that added it.
// - Publish throughput over loopback to mosquitto, QoS 0 and QoS 1, against the npm `mqtt` client in the same
//   run (both on Node, same payloads, same receiver; QoS 1 with the same window of unacknowledged messages).
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { loadTinymqtt } from '../test/tinymqtt/helpers.ts';
import { startMosquitto } from '../test/helpers/mosquitto.ts';
import { espruino, scratch, storageWrite, runScript } from '../test/helpers/espruino.ts';

const ours = join(import.meta.dirname, '..', 'build', 'tinymqtt.js');
const size = readFileSync(ours).length;
let missed = 0;
const row = (what: string, value: number, target: number, peer = '') => {
  if (value > target) missed++;
  console.log(`| ${what} | ${value} | <= ${target} | ${value <= target ? 'met' : 'MISSED'} | ${peer} |`);
};

const m = await startMosquitto();
try {
  console.log('| what | tinymqtt | target | | peer |\n| --- | --- | --- | --- | --- |');
  row('build/tinymqtt.js, bytes', size, 4096);
  if (!espruino) console.log('\nJsVars on Espruino: skipped (set ESPRUINO=/path/to/espruino, ideally the build with the ESP32 variable layout)');
  else {
    /** JsVars of require(name) from Storage, and of the whole scenario counted from before the require. */
    const measure = async (file: string, name: string) => {
      const dir = scratch();
      await runScript(dir, storageWrite(name, readFileSync(file)) + 'console.log("WRITTEN");\n');
      // the same calls for the three clients: subscribe(topic, {qos}) and publish(topic, message, {qos}) are
      // understood by each (tinyMQTT ignores the options, it does QoS 0 only)
      const r = await runScript(
        dir,
        `var m0, m1, M, c;
function u() { return process.memory().usage; }
function report() { console.log("JSVARS " + (m1 - m0) + " " + (u() - m0)); c.disconnect(); setTimeout(quit, 50); }
function onConnected() {
  c.subscribe("x/#", { qos: 1 });
  c.publish("x/y", "hello", { qos: 0 });
  setTimeout(report, 500);
}
// from a timeout, once the script's top level has run: the interpreter lets the script's text go then, which a
// baseline taken at the top level would count as the client's saving; the bench's functions are made above
function begin() {
  m0 = u();
  M = require(${JSON.stringify(name)});
  m1 = u();
  c = M.create("127.0.0.1", { port: ${m.port}, client_id: "bench-esp", keep_alive: 60 });
  c.on("connected", onConnected);
  c.connect();
}
setTimeout(begin, 100);
`,
        30000,
      );
      const j = /JSVARS (\d+) (\d+)/.exec(r.out);
      if (!j) throw new Error(`${name} on Espruino failed:\n${r.out}`);
      return { require: +j[1], total: +j[2] };
    };
    const peers = [
      { name: 'tinyMQTT', env: 'TINYMQTT_PEER', anchor: 223 },
      { name: 'MQTT', env: 'MQTT_PEER', anchor: 413 },
    ];
    const peerText: string[] = [];
    for (const p of peers) {
      const file = process.env[p.env];
      if (file) {
        const v = await measure(file, p.name);
        peerText.push(`${p.name} ${v.total} (measured now, ${p.env}; require ${v.require})`);
      } else peerText.push(`${p.name} ${p.anchor} (published anchor; set ${p.env}=/path/${p.name}.js to measure it)`);
    }
    const t = await measure(ours, 'tinymqtt');
    console.log(`\nJsVars on Espruino (${espruino}), module written to Storage and required from there:\n`);
    console.log('| what | tinymqtt | target | | peers, same scenario |\n| --- | --- | --- | --- | --- |');
    row('require("tinymqtt")', t.require, 40);
    row('connected, one subscription, one QoS 0 publish (require included)', t.total, 200, peerText.join('; '));

    /** Does a QoS 1 publish of a 131-byte report complete with only `free` JsVars free at rest? */
    const dir = scratch();
    await runScript(dir, storageWrite('tinymqtt', readFileSync(ours)) + 'console.log("WRITTEN");\n');
    const publishes = async (free: number) => {
      const r = await runScript(
        dir,
        `var buffer = new Uint8Array(512), report = buffer.subarray(0, 131), fill = [], ok = 0, c;
// what the agent's own code has touched already (first uses that build an interpreter prototype for good)
buffer.byteLength; /[+#]/.test("a"); E.toString(new Uint8Array(2)); Object.keys({}); [].x; (0).x; "".x;
function done() { fill = 0; console.log("PUBLISHED " + ok + " " + E.getErrorFlags().join(",")); quit(); }
function published(e) { ok = e ? "error" : "ok"; setTimeout(done, 50); }
function go() {
  var k;
  while ((k = process.memory().free - ${free}) > 0) for (; k > 0; k--) fill.push(0);
  E.getErrorFlags();
  c.publish("$aws/things/bench/defender/metrics/cbor", report, 1, published);
}
c = require("tinymqtt").create("127.0.0.1", { port: ${m.port}, client_id: "bench-peak", keep_alive: 60 });
c.on("connected", function () { setTimeout(go, 300); });
c.connect();
setTimeout(done, 3000);
`,
        15000,
      );
      const p = /PUBLISHED (\S+) ?(\S*)/.exec(r.out);
      // LOW_MEMORY only says a garbage collection ran; MEMORY is an allocation that failed
      return !!p && p[1] === 'ok' && !p[2].split(',').includes('MEMORY');
    };
    let lo = 0;
    let hi = 512;
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (await publishes(mid)) hi = mid;
      else lo = mid;
    }
    console.log(`| QoS 1 publish of a 131-byte report: JsVars it needs free, from the call to inside its callback | ${hi} | | | before this change (main at 6526c60): 145 |`);
  }

  const N0 = 10_000;
  const N1 = 2_000;
  const WINDOW = 32;
  const payload = Buffer.alloc(64, 0x61);
  const url = `mqtt://127.0.0.1:${m.port}`;
  const receiver = await mqtt.connectAsync(url, { clientId: 'bench-rx' });
  let received = 0;
  receiver.on('message', () => received++);
  await receiver.subscribeAsync('bench/#', { qos: 1 });

  interface Publisher {
    name: string;
    /** publish, calling done(err) when written (QoS 0) or acknowledged (QoS 1) */
    publish(topic: string, qos: 0 | 1, done: (err?: any) => void): void;
    close(): Promise<void>;
  }
  const tinyPublisher = async (): Promise<Publisher> => {
    const c = loadTinymqtt().create('127.0.0.1', { port: m.port, client_id: 'bench-tiny', transport: net, max_inflight: WINDOW });
    await new Promise<void>((r) => {
      c.once('connected', r);
      c.connect();
    });
    const message = new Uint8Array(payload);
    return { name: 'tinymqtt', publish: (topic, qos, done) => c.publish(topic, message, qos, done), close: async () => c.disconnect() };
  };
  const mqttPublisher = async (): Promise<Publisher> => {
    const c = await mqtt.connectAsync(url, { clientId: 'bench-mqtt' });
    return { name: 'mqtt (npm)', publish: (topic, qos, done) => c.publish(topic, payload, { qos }, done), close: () => c.endAsync() };
  };
  /** Messages per second, from the first publish to the receiver having them all. */
  const run = async (p: Publisher, qos: 0 | 1, n: number): Promise<number> => {
    received = 0;
    const start = performance.now();
    await new Promise<void>((resolve, reject) => {
      let sent = 0;
      let acked = 0;
      const next = () => {
        while (sent < n && (qos === 0 || sent - acked < WINDOW)) {
          sent++;
          p.publish('bench/x', qos, (err) => {
            if (err) return reject(err);
            acked++;
            if (qos === 1) next();
          });
          // QoS 0: yield now and then so the socket drains, as an application would
          if (qos === 0 && sent % 500 === 0) return void setImmediate(next);
        }
        if (sent === n) resolve();
      };
      next();
    });
    // bounded: QoS 0 messages the broker drops would otherwise keep the bench waiting for ever
    const deadline = performance.now() + 20_000;
    while (received < n && performance.now() < deadline) await new Promise((r) => setTimeout(r, 1));
    if (received < n) console.log(`${p.name}, QoS ${qos}: the receiver got ${received} of ${n} within 20 s`);
    return received / ((performance.now() - start) / 1000);
  };
  const rows: Record<string, { 'tinymqtt msg/s': number; 'mqtt msg/s': number; 'tinymqtt / mqtt': string }> = {};
  for (const [qos, n] of [[0, N0], [1, N1]] as const) {
    const rate: Record<string, number> = {};
    for (const make of [tinyPublisher, mqttPublisher]) {
      const p = await make();
      rate[p.name] = await run(p, qos, n);
      await p.close();
    }
    rows[`QoS ${qos}, ${n} x 64 B`] = {
      'tinymqtt msg/s': Math.round(rate['tinymqtt']),
      'mqtt msg/s': Math.round(rate['mqtt (npm)']),
      'tinymqtt / mqtt': (rate['tinymqtt'] / rate['mqtt (npm)']).toFixed(2),
    };
  }
  console.log(`\nPublish throughput on Node to mosquitto on loopback (QoS 1 with ${WINDOW} unacknowledged at most):`);
  console.table(rows);
  await receiver.endAsync();
} finally {
  await m.stop();
}
if (missed && espruino) {
  console.log(`\n${missed} target(s) missed`);
  process.exit(1);
}
