// Report encoding: our writer (build/defender.js) against cbor-x and cbor-js encoding the same document, in the
// same run, with 2 and 8 connections; bytes against the canonical encoding (cborg); bytes the metrics core adds
// to build/defender.js. Bounded: tinybench, 300 ms per task. When ESPRUINO names an interpreter: the time of one
// report on it (loaded from Storage), against Espruino's native JSON.stringify of the same document.
import { Bench } from 'tinybench';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as cborx from 'cbor-x';
import CBOR from 'cbor-js';
import * as cborg from 'cborg';
import { loadBundle } from '../sim/bundle.ts';
import { mockNet } from '../test/metrics/helpers.ts';
import { espruino, scratch, storageWriteBundle, runScript } from '../test/helpers/espruino.ts';

const d = loadBundle('defender');
const buf = new Uint8Array(2048);
const encoder = new cborx.Encoder({ useRecords: false, mapsAsObjects: true });
const rows: any[] = [];
for (const n of [2, 8]) {
  const net = d.track(mockNet());
  const socks = [];
  for (let i = 0; i < n; i++) {
    socks.push(net.connect({ host: '52.94.' + i + '.17', port: 8883 }));
    socks[i].emit('connect');
  }
  const flags = 0x1ff;
  const len = d.writeReport(buf, false, false, flags, 1718000000123, null);
  const doc = cborg.decode(buf.subarray(0, len), { useMaps: false });
  const canonical = cborg.encode(doc).length;
  const bench = new Bench({ time: 300 });
  bench
    .add('ours', () => d.writeReport(buf, false, false, flags, 1718000000123, null))
    .add('cbor-x', () => encoder.encode(doc))
    .add('cbor-js', () => CBOR.encode(doc));
  await bench.run();
  // a task that threw has no latency: the run is then void anyway
  const mean = (name: string) => (bench.tasks.find((t) => t.name === name)!.result as any).latency.mean as number;
  rows.push({
    connections: n,
    'ours µs': (mean('ours') * 1000).toFixed(2),
    'cbor-x / ours': (mean('cbor-x') / mean('ours')).toFixed(2),
    'cbor-js / ours': (mean('cbor-js') / mean('ours')).toFixed(2),
    'our bytes': len,
    'canonical bytes': canonical,
  });
  for (const s of socks) s.emit('close');
}
console.table(rows);
// the metrics core is everything in build/defender.js but the placeholder export it replaced
const bundle = readFileSync(join(import.meta.dirname, '..', 'build', 'defender.js')).length;
const placeholder = 'exports.version="0.1.0";\n'.length;
console.log(`build/defender.js: ${bundle} bytes; the metrics core adds ${bundle - placeholder} bytes`);

if (!espruino) console.log('\nencode time on Espruino: skipped (set ESPRUINO=/path/to/espruino)');
else {
  const dir = scratch();
  await runScript(dir, storageWriteBundle('defender') + 'console.log("WRITTEN");\n');
  const r = await runScript(
    dir,
    `var d = require("defender"), buf = new Uint8Array(2048), N = 20;
var mock = { connect: function () { var s = {}; s.write = function () {}; s.end = function () {}; return s; } };
var t = d.track(mock);
for (var n = 2; n <= 8; n += 6) {
  var socks = [];
  for (var i = socks.length; i < n; i++) { var s = t.connect({ host: "52.94." + i + ".17", port: 8883 }); s.emit("connect"); socks.push(s); }
  for (var json = 0; json < 2; json++) {
    var len = d.writeReport(buf, !!json, false, 0x1ff, 1718000000123, null);
    var doc = JSON.parse(json ? E.toString(buf.subarray(0, len)) : '{}');
    var t0 = getTime();
    for (var k = 0; k < N; k++) d.writeReport(buf, !!json, false, 0x1ff, 1718000000123, null);
    var ours = (getTime() - t0) / N;
    var peer = 0;
    if (json) { t0 = getTime(); for (k = 0; k < N; k++) JSON.stringify(doc); peer = (getTime() - t0) / N; }
    console.log("TIME " + n + " " + (json ? "json" : "cbor") + " " + (ours * 1000).toFixed(2) + " " + (peer * 1000).toFixed(2));
  }
  for (i = 0; i < socks.length; i++) socks[i].emit("close");
}
`,
    120000,
  );
  console.log(`\nOne report on Espruino (${espruino}), ms, mean of 20 (JSON.stringify: Espruino's native one on the same document):`);
  console.log('| connections | format | ours ms | JSON.stringify ms | ours / JSON.stringify |\n| --- | --- | --- | --- | --- |');
  for (const m of r.out.matchAll(/TIME (\d+) (\w+) ([\d.]+) ([\d.]+)/g)) {
    console.log(`| ${m[1]} | ${m[2]} | ${m[3]} | ${m[2] === 'json' ? m[4] : ''} | ${m[2] === 'json' ? (Number(m[3]) / Number(m[4])).toFixed(1) : ''} |`);
  }
}
