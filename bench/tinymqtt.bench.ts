// tinymqtt: minified size of build/tinymqtt.js against the 2.5 KB target; publish throughput over loopback
// to mosquitto, QoS 0 and QoS 1, against the npm `mqtt` client in the same run (both on Node, same payloads,
// same receiver; QoS 1 with the same window of unacknowledged messages), as messages per second and the ratio
// tinymqtt / mqtt; and, when ESPRUINO names an interpreter, the JsVars of the module loaded from Storage and of a
// client connected to mosquitto with one subscription, after a QoS 1 publish.
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { loadTinymqtt } from '../test/tinymqtt/helpers.ts';
import { startMosquitto } from '../test/helpers/mosquitto.ts';
import { espruino, scratch, storageWriteBundle, runScript } from '../test/helpers/espruino.ts';

const size = readFileSync(join(import.meta.dirname, '..', 'build', 'tinymqtt.js')).length;
console.log('| file | bytes | target | of target |\n| --- | --- | --- | --- |');
console.log(`| build/tinymqtt.js | ${size} | <= 2560 | ${((size / 2560) * 100).toFixed(0)}% |`);

const N0 = 20_000;
const N1 = 5_000;
const WINDOW = 32;
const ROUNDS = 3;
const payload = Buffer.alloc(64, 0x61);

const m = await startMosquitto();
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

async function tinyPublisher(): Promise<Publisher> {
  const c = loadTinymqtt().create('127.0.0.1', { port: m.port, client_id: 'bench-tiny', transport: net, max_inflight: WINDOW });
  await new Promise<void>((r) => {
    c.once('connected', r);
    c.connect();
  });
  const message = new Uint8Array(payload);
  return {
    name: 'tinymqtt',
    publish: (topic, qos, done) => c.publish(topic, message, qos, done),
    close: async () => c.disconnect(),
  };
}

async function mqttPublisher(): Promise<Publisher> {
  const c = await mqtt.connectAsync(url, { clientId: 'bench-mqtt' });
  return {
    name: 'mqtt (npm)',
    publish: (topic, qos, done) => c.publish(topic, payload, { qos }, done),
    close: () => c.endAsync(),
  };
}

/** Messages per second, from the first publish to the receiver having them all. */
async function run(p: Publisher, qos: 0 | 1, n: number): Promise<number> {
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
  while (received < n) await new Promise((r) => setTimeout(r, 1));
  return n / ((performance.now() - start) / 1000);
}

const rows: Record<string, { qos: number; 'tinymqtt msg/s': number; 'mqtt msg/s': number; ratio: string }> = {};
try {
  for (const [qos, n] of [[0, N0], [1, N1]] as const) {
    const best: Record<string, number> = {};
    for (let round = 0; round < ROUNDS; round++) {
      for (const make of [tinyPublisher, mqttPublisher]) {
        const p = await make();
        const rate = await run(p, qos, n);
        best[p.name] = Math.max(best[p.name] ?? 0, rate);
        await p.close();
      }
    }
    rows[`QoS ${qos}, ${n} x 64 B`] = {
      qos,
      'tinymqtt msg/s': Math.round(best['tinymqtt']),
      'mqtt msg/s': Math.round(best['mqtt (npm)']),
      ratio: (best['tinymqtt'] / best['mqtt (npm)']).toFixed(2),
    };
  }
  console.log(`\nPublish throughput to mosquitto on loopback (best of ${ROUNDS}; QoS 1 with ${WINDOW} unacknowledged at most):`);
  console.table(rows);
  if (!espruino) console.log('\nJsVars on Espruino: skipped (set ESPRUINO=/path/to/espruino, ideally a build with the ESP32 variable layout)');
  else {
    const dir = scratch();
    await runScript(dir, storageWriteBundle('tinymqtt') + 'console.log("WRITTEN");\n');
    const r = await runScript(
      dir,
      `var u = function () { return process.memory().usage; };
var m0 = u(), tm = require("tinymqtt"), m1 = u();
var c = tm.create("127.0.0.1", { port: ${m.port}, client_id: "bench-esp", keep_alive: 60 });
c.on("connected", function () {
  c.subscribe("x/#", 1, function () {
    c.publish("x/y", "hello", 1, function () {
      setTimeout(function () { console.log("JSVARS " + (m1 - m0) + " " + (u() - m1)); c.disconnect(); quit(); }, 300);
    });
  });
});
c.connect();
`,
      30000,
    );
    const j = /JSVARS (\d+) (\d+)/.exec(r.out);
    console.log(`\nJsVars on Espruino (${espruino}):`);
    console.log(j ? `| what | JsVars |\n| --- | --- |\n| require("tinymqtt") | ${j[1]} |\n| a connected client, one subscription, after a QoS 1 publish | ${j[2]} |` : 'run failed:\n' + r.out);
  }
} finally {
  await receiver.endAsync();
  await m.stop();
}
