// The agent: size of build/defender.js against the 8 KB target, and, when ESPRUINO names an Espruino
// interpreter (ideally the ESP32 variable layout), its memory in the scenario: both modules written to
// Storage and required from there; a tinymqtt client connected over a tracked `net` to the local Device Defender
// service on loopback (its own aedes broker, judging and answering every report); one more tracked connection open (to
// an echo server here); the agent started with 8 slots and minPeriod lowered, reporting every second.
// Printed: process.memory().usage minus its value before the first require, after 10 and after 100 accepted reports.
import { readFileSync } from 'node:fs';
import { createServer as createNetServer, type Server } from 'node:net';
import { join } from 'node:path';
import { startService } from '../service/service.ts';
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

  // the local Device Defender service, with its own broker (aedes), judging and answering every report
  const svc = await startService({ port: 0, minPeriod: PERIOD / 2 });
  const mqttPort = svc.port;
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
  echo.close();
  await svc.close();
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
