// The agent: size of build/defender.js, and, when ESPRUINO names an Espruino interpreter (ideally the ESP32 variable
// layout), its memory in issue 11's scenario: both modules written to Storage and required from there; a tinymqtt
// client connected over a tracked `net` to the local Device Defender service on loopback (its own aedes broker,
// judging and answering every report); one more tracked connection open (to an echo server here); the agent started
// with 8 slots, reporting every second. Every figure is process.memory().usage (after its garbage collection) minus
// its value before the first require, printed beside its target:
//   require("defender")   right after it
//   between reports       half a period after an accepted report (after 10, 100 and 1,000 of them), and not while
//                         a report's publish is in flight
//   during a report       the highest seen from inside the report's publish path: when the agent calls publish (the
//                         report written, the agent's per-report code alive), when the client's publish returns (the
//                         packet held until its PUBACK), in the publish's callback, and in the event callback
//   600 free              the scenario again with memory filled by typed arrays before the first require until only
//                         600 JsVars are free: its reports must be accepted, with no memory error (without the
//                         sampling wrapper around the client's publish, whose call frame is the bench's)
//   least free            the same with less, by bisection: the least free memory its reports go through in, which
//                         is the true peak (a sample cannot see inside a call, such as the report's writing)
//   other styles          between reports, during a report (over 10 reports) and the least free memory again, in
//                         each of CBOR with long tags, JSON with short tags and JSON with long tags
//   for context           (no target) require of a module holding only the API's nine functions, and the scenario
//                         without the agent: that module, the client connected with the agent's two response
//                         subscriptions, the second connection raw: what no agent with this API and client avoids
// Exits non-zero when a target is missed while ESPRUINO is set. AGENT_BENCH_REPORTS (default 1000) and
// AGENT_BENCH_PERIOD (seconds, default 1) shorten a run.
import { readFileSync } from 'node:fs';
import { createServer as createNetServer, type Server } from 'node:net';
import { join } from 'node:path';
import { startService } from '../service/service.ts';
import { espruino, scratch, storageWrite, storageWriteBundle, runScript } from '../test/helpers/espruino.ts';

const build = join(import.meta.dirname, '..', 'build');
const PERIOD = Number(process.env.AGENT_BENCH_PERIOD || 1);
const REPORTS = Number(process.env.AGENT_BENCH_REPORTS || 1000);
const FREE_REPORTS = 5; // reports that must be accepted in the 600-free run
const STYLE_REPORTS = 10; // reports in each of the other formats and tag styles

const rows: { what: string; value: number | string; target: string; ok: boolean; ratio?: string }[] = [];
function row(what: string, value: number | undefined, limit: number, unit = 'JsVars') {
  const ok = value !== undefined && value <= limit;
  const ratio = value === undefined ? '' : `${((value / limit) * 100).toFixed(0)}%`;
  rows.push({ what, value: value === undefined ? 'missing' : `${value} ${unit}`, target: `<= ${limit}`, ok, ratio });
}

const size = readFileSync(join(build, 'defender.js')).length;
row('build/defender.js', size, 8192, 'bytes');

/** Whether a scenario's output shows trouble: an agent event other than an accepted report, a client error, an
 * uncaught exception or a memory error. */
function troubled(out: string): boolean {
  return /EVENT|ERROR|Uncaught|MEMORY/.test(out);
}

/** Whether a run of the scenario for FREE_REPORTS reports got them all through, untroubled. */
function wentThrough(out: string): boolean {
  return new RegExp(`AT ${FREE_REPORTS} `).test(out) && !troubled(out);
}

/** The scenario as an Espruino script; `fill` first fills memory until only that many JsVars are free. The
 * report's format and tag style: CBOR and short tags unless asked. */
function scenario(mqttPort: number, echoPort: number, reports: number, fill = 0, format = 'cbor', longTags = false): string {
  return `
var m0, d, tm, net, other, c, pub, done, n = 0, on = 0, peak = 0, fill = [], free, inFlight = 0;
function use() { var u = process.memory().usage - m0; if (u > peak) peak = u; }
// at rest: not while a report is in flight (a late answer can put the measurement into the next report)
function between() {
  if (inFlight) return setTimeout(between, 50);
  console.log("AT " + n + " " + (process.memory().usage - m0) + " " + peak);
  if (n >= ${reports}) finish();
}
function finish() { d.stop(); c.disconnect(); other.end(); console.log("DONE " + process.memory().free); }
function cb(ev) {
  use();
  if (ev.type !== 1) return console.log("EVENT " + ev.type + " " + ev.code + " " + ev.message);
  n++;
  if (n === 10 || n === 100 || n === 1000 || n === ${reports}) setTimeout(between, ${(PERIOD * 500) | 0});
}
// the bench's own instrumentation and the application's handlers, made here, before the measurement starts: a
// function defined in a script's RAM text costs that text in JsVars, which is no part of the agent (so the
// publish's callback is wrapped by one function made here, not by a closure made per publish)
function measuredPublish(t, m, q, cb) {
  var r;
  inFlight = 1;
  use();
  done = cb;
  r = pub.call(c, t, m, q, measuredDone);
  use();
  return r;
}
function measuredDone(e) { var f = done; use(); inFlight = done = 0; f(e); }
function onError(e) { console.log("ERROR " + e.message); }
function onConnected() {
  if (on++) return;
  console.log("START " + d.start({ mqtt: c, thingName: "bench", callback: cb, slots: 8, minPeriod: ${PERIOD}, period: ${PERIOD}, format: "${format}", longTags: ${longTags} }));
}
function onOther() {}
// The scenario starts from a timeout, once the script's top level has run: the interpreter holds a script's text
// until then and lets it go after (some 220 JsVars for this one), which a baseline taken at the top level would
// count as the scenario's own saving. Everything that is the bench's is made above, before the baseline.
function begin() {
  if (${fill}) {
    // typed arrays until only ${fill} JsVars are free (the array holding them costs its share too)
    for (;;) {
      free = process.memory().free - ${fill};
      if (free <= 0) break;
      fill.push(new Uint8Array(free > 60 ? (free - 40) * 10 : 4));
    }
    console.log("FREE " + process.memory().free);
  }
  m0 = process.memory().usage;
  d = require("defender");
  console.log("REQUIRE " + (process.memory().usage - m0));
  tm = require("tinymqtt");
  net = d.track(require("net"));
  other = net.connect({ host: "127.0.0.1", port: ${echoPort} }, onOther);
  c = tm.create("127.0.0.1", { port: ${mqttPort}, client_id: "bench", keep_alive: 60, transport: net });
  // the sampling wrapper only where the peak is sampled: in a run with memory filled its call frame, on the
  // report's path, would count against the free memory as if it were the agent's
  if (!${fill}) {
    pub = c.publish;
    c.publish = measuredPublish;
  }
  c.on("error", onError);
  c.on("connected", onConnected);
  c.connect();
}
setTimeout(begin, 100);
`;
}

/** The API's nine functions with a one-line body each, as a Storage module: what require("defender") costs at the
 * least, whatever the agent does behind them. */
const API_ONLY = ['start', 'stop', 'setPeriod', 'getPeriod', 'setMetrics', 'report', 'strerror', 'track', 'writeReport']
  .map((name, i) => `exports.${name}=function(){return arguments[0]+${i}};`)
  .join('');

/** The scenario's floor, as an Espruino script: what it holds that is not the agent's and that no agent with this
 * API over this client avoids, measured as the scenario is: the API-only module required, the tinymqtt client
 * connected over an untracked net with the agent's two response subscriptions granted, and the second connection,
 * raw. */
function floorScenario(mqttPort: number, echoPort: number): string {
  const topic = '$aws/things/bench/defender/metrics/cbor';
  return `
var m0, api, tm, net, other, c, granted = 0;
function onOther() {}
function onError(e) { console.log("ERROR " + e.message); }
function onGranted(e) { if (e) console.log("ERROR " + e); if (++granted === 2) setTimeout(measure, 500); }
function onConnected() {
  c.subscribe("${topic}/accepted", 1, onGranted);
  c.subscribe("${topic}/rejected", 1, onGranted);
}
function measure() { console.log("FLOOR " + (process.memory().usage - m0)); c.disconnect(); other.end(); }
function begin() {
  m0 = process.memory().usage;
  api = require("api");
  console.log("API " + (process.memory().usage - m0));
  tm = require("tinymqtt");
  net = require("net");
  other = net.connect({ host: "127.0.0.1", port: ${echoPort} }, onOther);
  c = tm.create("127.0.0.1", { port: ${mqttPort}, client_id: "bench", keep_alive: 60, transport: net });
  c.on("error", onError);
  c.on("connected", onConnected);
  c.connect();
}
setTimeout(begin, 100);
`;
}

async function memory(): Promise<void> {
  if (!espruino) return console.log('memory on Espruino: skipped (set ESPRUINO=/path/to/espruino, ideally a build with the ESP32 variable layout)\n');
  const svc = await startService({ port: 0, minPeriod: PERIOD / 2 });
  const echo: Server = createNetServer((s) => s.pipe(s));
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  const echoPort = (echo.address() as any).port;
  try {
    const dir = scratch();
    await runScript(dir, storageWriteBundle('tinymqtt') + storageWriteBundle('defender') + storageWrite('api', API_ONLY) + 'console.log("WRITTEN");\n');

    // the floor, for context (no target): the between-reports target sits below it
    const floor = await runScript(dir, floorScenario(svc.port, echoPort), 30000);
    const apiOnly = Number(/API (\d+)/.exec(floor.out)?.[1]);
    const held = Number(/FLOOR (\d+)/.exec(floor.out)?.[1]);
    if (!held || /ERROR|Uncaught|MEMORY/.test(floor.out)) console.log('floor output:\n' + floor.out.slice(0, 3000));
    rows.push({ what: 'for context: require of a module holding only the API\'s nine functions, one line each', value: `${apiOnly} JsVars`, target: '-', ok: apiOnly > 0 });
    rows.push({
      what: 'for context: the scenario without the agent (that module, the client connected with the two response subscriptions, the second connection raw)',
      value: `${held} JsVars`,
      target: '-',
      ok: held > 0,
    });

    const run = await runScript(dir, scenario(svc.port, echoPort, REPORTS), (REPORTS * PERIOD + 60) * 1000);
    const req = Number(/REQUIRE (\d+)/.exec(run.out)?.[1]);
    const at = new Map([...run.out.matchAll(/AT (\d+) (-?\d+) (\d+)/g)].map((m) => [Number(m[1]), { between: Number(m[2]), peak: Number(m[3]) }]));
    row('require("defender")', req || undefined, 100);
    for (const n of [10, 100, 1000].filter((k) => k <= REPORTS)) row(`between reports, after ${n} accepted`, at.get(n)?.between, 300);
    row(`during a report (peak over ${REPORTS})`, at.get(REPORTS)?.peak, 400);
    const first = at.get(10)?.between;
    const last = at.get(REPORTS)?.between;
    if (first !== undefined && last !== undefined) {
      rows.push({ what: `growth from 10 to ${REPORTS} reports`, value: `${last - first} JsVars`, target: '<= 0', ok: last <= first });
    } else rows.push({ what: `growth from 10 to ${REPORTS} reports`, value: 'missing', target: '<= 0', ok: false });
    const trouble = troubled(run.out);
    if (trouble || at.size === 0) console.log('scenario output:\n' + run.out.slice(0, 3000));

    // the service keeps the last 20 reports: the low run's are those whose ids it had not seen
    const seen = new Set(svc.reports('bench').map((r) => r.exactId));
    const low = await runScript(dir, scenario(svc.port, echoPort, FREE_REPORTS, 600), (FREE_REPORTS * PERIOD + 60) * 1000);
    const free = Number(/FREE (\d+)/.exec(low.out)?.[1]);
    const lowOk = wentThrough(low.out);
    const lowAccepted = svc.reports('bench').filter((r) => !seen.has(r.exactId) && r.verdict === 'ACCEPTED').length;
    rows.push({
      what: `600 JsVars free (${free} measured): reports accepted, no memory error`,
      value: lowOk ? `${lowAccepted} accepted` : 'failed',
      target: `>= ${FREE_REPORTS}`,
      ok: lowOk && lowAccepted >= FREE_REPORTS,
    });
    if (!lowOk) console.log('600-free output:\n' + low.out.slice(0, 3000));

    // the true peak: the sampled one above cannot see inside a synchronous call (the report's writing), so fill
    // memory before the first require and find, by bisection, the least free memory the scenario runs in
    // (runsWith600: the 600-free run went through, so the search starts below 600, not 1200)
    const leastFree = async (style: string, format = 'cbor', longTags = false, runsWith600 = false): Promise<void> => {
      const runsWith = async (free: number): Promise<boolean> =>
        wentThrough((await runScript(dir, scenario(svc.port, echoPort, FREE_REPORTS, free, format, longTags), (FREE_REPORTS * PERIOD + 60) * 1000)).out);
      let fails = 300;
      let runs = runsWith600 ? 600 : 1200;
      if (!(await runsWith(fails)) && (runsWith600 || (await runsWith(runs)))) {
        while (runs - fails > 4) {
          const mid = (fails + runs) >> 1;
          if (await runsWith(mid)) runs = mid;
          else fails = mid;
        }
        row(`${style}the least free memory the scenario runs in (${FREE_REPORTS} reports; it fails with ${fails}): the true peak`, runs, 400);
      } else row(`${style}the least free memory the scenario runs in: the true peak`, undefined, 400);
    };
    await leastFree('', 'cbor', false, lowOk);

    // the other formats and tag styles: the same targets, over STYLE_REPORTS reports each (a longer document
    // is held while it is published)
    for (const [format, longTags] of [['cbor', true], ['json', false], ['json', true]] as const) {
      const style = `${format.toUpperCase()}, ${longTags ? 'long' : 'short'} tags`;
      const other = await runScript(dir, scenario(svc.port, echoPort, STYLE_REPORTS, 0, format, longTags), (STYLE_REPORTS * PERIOD + 60) * 1000);
      const last = /AT \d+ (-?\d+) (\d+)/.exec(other.out);
      row(`${style}: between reports, after ${STYLE_REPORTS} accepted`, last ? Number(last[1]) : undefined, 300);
      row(`${style}: during a report (peak over ${STYLE_REPORTS})`, last ? Number(last[2]) : undefined, 400);
      if (!last || troubled(other.out)) console.log(`${style} output:\n` + other.out.slice(0, 3000));
      await leastFree(`${style}: `, format, longTags);
    }
  } finally {
    echo.close();
    await svc.close();
  }
}

await memory();
console.log(`Agent scenario on ${espruino || 'Node only'}: both modules from Storage, tinymqtt over a tracked net, one more tracked connection, 8 slots, a report every ${PERIOD} s\n`);
console.log('| figure | measured | target | of target | met |\n| --- | --- | --- | --- | --- |');
for (const r of rows) console.log(`| ${r.what} | ${r.value} | ${r.target} | ${r.ratio ?? ''} | ${r.ok ? 'yes' : '**no**'} |`);
if (rows.some((r) => !r.ok) && espruino) process.exitCode = 1;
