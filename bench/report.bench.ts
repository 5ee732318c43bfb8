// Report encoding: our writer (build/defender.js) against cbor-x and cbor-js encoding the same document, in the
// same run, with 2 and 8 connections; bytes against the canonical encoding (cborg); bytes the metrics core adds
// to build/defender.js. Bounded: tinybench, 300 ms per task.
import { Bench } from 'tinybench';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as cborx from 'cbor-x';
import CBOR from 'cbor-js';
import * as cborg from 'cborg';
import { loadBundle } from '../test/metrics/bundle.ts';
import { mockNet } from '../test/metrics/helpers.ts';

const d = loadBundle();
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
  const mean = (name: string) => bench.tasks.find((t) => t.name === name)!.result!.latency.mean;
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
