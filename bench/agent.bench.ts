// The agent: size of build/defender.js against the 8 KB target, and, when ESPRUINO names an Espruino
// interpreter (ideally the ESP32 variable layout), its memory in the scenario: both modules written to
// Storage and required from there; a tinymqtt client connected over a tracked `net` to a broker on loopback (aedes
// in this process, answering every report on .../accepted like the service); one more tracked connection open (to
// an echo server here); the agent started with 8 slots and minPeriod lowered, reporting every second.
// Printed: process.memory().usage minus its value before the first require, after 10 and after 100 accepted reports.
import { readFileSync } from 'node:fs';
import { createServer as createNetServer, type Server } from 'node:net';
import { join } from 'node:path';
import * as cborg from 'cborg';
import { espruino, scratch, storageWriteBundle, runScript } from '../test/helpers/espruino.ts';
import { freePort } from '../test/helpers/net.ts';

const build = join(import.meta.dirname, '..', 'build');
const size = readFileSync(join(build, 'defender.js')).length;
console.log('| file | bytes | target | of target |\n| --- | --- | --- | --- |');
console.log(`| build/defender.js | ${size} | <= 8192 | ${((size / 8192) * 100).toFixed(0)}% |`);

const PERIOD = 1; // seconds between reports on the interpreter
const REPORTS = Number(process.env.AGENT_BENCH_REPORTS || 100);

async function memory(): Promise<void> {
  if (!espruino) return console.log('\nmemory on Espruino: skipped (set ESPRUINO=/path/to/espruino, ideally a build with the ESP32 variable layout)');
  if (!/\bcreate\b/.test(readFileSync(join(build, 'tinymqtt.js'), 'utf8'))) return console.log('\nmemory on Espruino: skipped (build/tinymqtt.js has no client yet)');

  // broker: aedes, answering each report like the service does (accepted, with its report id)
  const { Aedes } = await import('aedes');
  const aedes: any = await (Aedes as any).createBroker();
  aedes.on('publish', (packet: any, client: any) => {
    const m = /^(\$aws\/things\/[^/]+\/defender\/metrics\/(cbor|json))$/.exec(packet.topic);
    if (!client || !m) return;
    const json = m[2] === 'json';
    const doc: any = json ? JSON.parse(packet.payload.toString()) : cborg.decode(packet.payload, { useMaps: false });
    const h = doc.hed || doc.header;
    const r = { thingName: 'bench', reportId: h.rid ?? h.report_id, status: 'ACCEPTED', timestamp: Date.now() };
    aedes.publish({ topic: m[1] + '/accepted', payload: Buffer.from(json ? JSON.stringify(r) : cborg.encode(r)), qos: 0, retain: false, cmd: 'publish', dup: false }, () => {});
  });
  const mqttPort = await freePort();
  const broker: Server = createNetServer(aedes.handle);
  await new Promise<void>((r) => broker.listen(mqttPort, '127.0.0.1', r));
  const echoPort = await freePort();
  const echo: Server = createNetServer((s) => s.pipe(s));
  await new Promise<void>((r) => echo.listen(echoPort, '127.0.0.1', r));

  const dir = scratch();
  await runScript(dir, storageWriteBundle('tinymqtt') + storageWriteBundle('defender') + 'console.log("WRITTEN");\n');
  const script = `
var m0 = process.memory().usage;
var d = require("defender");
var tm = require("tinymqtt");
var net = d.track(require("net"));
var other = net.connect({ host: "127.0.0.1", port: ${echoPort} }, function () {});
var c = tm.create("127.0.0.1", { port: ${mqttPort}, client_id: "bench", keep_alive: 60, transport: net });
var n = 0, on = 0;
function cb(ev) {
  if (ev.type !== 1) return console.log("EVENT " + ev.type + " " + ev.code + " " + ev.message);
  n++;
  if (n === 10 || n === ${REPORTS}) console.log("AT " + n + " " + (process.memory().usage - m0));
  if (n === ${REPORTS}) { d.stop(); c.disconnect(); other.end(); }
}
c.on("connected", function () {
  if (on++) return;
  console.log("START " + d.start({ mqtt: c, thingName: "bench", callback: cb, slots: 8, minPeriod: ${PERIOD}, period: ${PERIOD} }));
});
c.connect();
`;
  const run = await runScript(dir, script, (REPORTS * PERIOD + 30) * 1000);
  broker.close();
  echo.close();
  await new Promise<void>((r) => aedes.close(() => r()));
  const at = [...run.out.matchAll(/AT (\d+) (-?\d+)/g)].map((m) => ({ reports: Number(m[1]), JsVars: Number(m[2]) }));
  console.log(`\nmemory on Espruino (${espruino}): process.memory().usage minus its value before the first require`);
  console.log('| accepted reports | JsVars | target |\n| --- | --- | --- |');
  for (const a of at) console.log(`| ${a.reports} | ${a.JsVars} | <= 400, no growth |`);
  if (at.length < 2) {
    console.log('incomplete run:\n' + run.out.slice(0, 3000));
    process.exitCode = 1;
  }
}

await memory();
