// Detect's throughput: recorded reports fed straight into the collector (the service's Judge, then Detect: store and
// evaluate), one after another on one core, with 10 behaviours and 100,000 things (two reports each: the first
// creates each thing's rows, the second updates them). Target: 2,000 reports/s with SQLite (100,000 devices
// reporting every 5 minutes send 333/s). The named peer, measured in the same run on the same reports: the Judge
// alone (decode + validate), i.e. the service without Detect. Latency: from the payload handed to the Judge to
// the alert emitted (after its violation is committed), p50 and p99, for the ~1% of reports that raise one.
// With PostgreSQL installed, the same on a private cluster (fewer things, 32 reports in flight).
//
//   npm run bench -- detect
//   DETECT_BENCH_THINGS=20000 DETECT_BENCH_BACKENDS=sqlite npm run bench -- detect   (a quicker run, SQLite only)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as cborg from 'cborg';
import { Judge } from '../service/judge.ts';
import { createDetect, type AlertMessage } from '../service/detect/detect.ts';
import { openSqlite } from '../service/store/sqlite.ts';
import type { Store } from '../service/store/store.ts';
import { loadBundle } from '../test/metrics/bundle.ts';
import { mockNet } from '../test/metrics/helpers.ts';
import { postgresBin, startPostgres } from '../test/helpers/postgres.ts';

const THINGS = Number(process.env.DETECT_BENCH_THINGS ?? 100_000);
const ROUNDS = 2;
const TARGET = 2000;
/** Which backends to run (default both). */
const BACKENDS = (process.env.DETECT_BENCH_BACKENDS ?? 'sqlite,postgres').split(',');

const PROFILE = {
  securityProfileName: 'bench',
  behaviors: [
    { name: 'conns', metric: 'aws:num-established-tcp-connections', criteria: { comparisonOperator: 'less-than-equals', value: { count: 8 } } },
    { name: 'bytes-out', metric: 'aws:all-bytes-out', criteria: { comparisonOperator: 'less-than-equals', value: { count: 1_000_000 }, durationSeconds: 300 } },
    { name: 'bytes-in', metric: 'aws:all-bytes-in', criteria: { comparisonOperator: 'less-than-equals', value: { count: 1_000_000 }, durationSeconds: 300 } },
    { name: 'packets-out', metric: 'aws:all-packets-out', criteria: { comparisonOperator: 'less-than', value: { count: 10_000 }, consecutiveDatapointsToClear: 2 } },
    { name: 'destinations', metric: 'aws:destination-ip-addresses', criteria: { comparisonOperator: 'in-cidr-set', value: { cidrs: ['52.94.0.0/16', '10.0.0.0/8', '192.168.0.0/16'] } } },
    { name: 'tcp-ports', metric: 'aws:listening-tcp-ports', criteria: { comparisonOperator: 'in-port-set', value: { ports: [80, 443, 8080] } } },
    { name: 'udp-ports', metric: 'aws:listening-udp-ports', criteria: { comparisonOperator: 'not-in-port-set', value: { ports: [23, 69] } } },
    { name: 'tcp-port-count', metric: 'aws:num-listening-tcp-ports', criteria: { comparisonOperator: 'less-than-equals', value: { count: 4 } } },
    { name: 'battery', metric: 'battery', criteria: { comparisonOperator: 'greater-than', value: { number: 10 } } },
    { name: 'conns-p99', metric: 'aws:num-established-tcp-connections', criteria: { comparisonOperator: 'less-than-equals', statisticalThreshold: { statistic: 'p99' }, durationSeconds: 300 } },
  ],
};

/** Report templates written by the built device module (build/defender.js): 2 connections to allowed addresses, or
 * 9 to one outside the set (a violation of two behaviours); two listening ports. */
function templates(): any[] {
  const d = loadBundle();
  const buf = new Uint8Array(4096);
  const out: any[] = [];
  for (const [n, host] of [
    [2, '52.94.1.'],
    [9, '203.0.113.'],
  ] as const) {
    const net = d.track(mockNet());
    const socks = [];
    for (let i = 0; i < n; i++) {
      const s = net.connect({ host: host + (i + 1), port: 8883 });
      s.emit('connect');
      socks.push(s);
    }
    const srv = net.createServer(() => {});
    srv.listen(443);
    const len = d.writeReport(buf, false, false, 0x3ff, 1, { battery: { number: 80 } });
    out.push(cborg.decode(buf.subarray(0, len), { useMaps: false }));
    for (const s of socks) s.emit('close');
    srv.close();
  }
  return out;
}

interface Recorded {
  thing: string;
  payload: Uint8Array;
}

/** The reports, encoded before the clock starts: ~1% of them violating. */
function record(things: number): Recorded[] {
  const [normal, bad] = templates();
  const out: Recorded[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    for (let i = 0; i < things; i++) {
      const doc = structuredClone(i % 100 === 7 && r === 1 ? bad : normal);
      doc.hed.rid = 1_700_000_000_000 + r * 1000 + (i % 1000);
      doc.met.ns = { bi: 1000 + (i % 5000), bo: 2000 + (i % 3000), pi: 10, po: 12 };
      out.push({ thing: `thing-${i}`, payload: cborg.encode(doc) });
    }
  }
  return out;
}

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN;

/** Judge alone: the peer. */
function judgeOnly(reports: Recorded[]): number {
  const judge = new Judge({ minPeriod: 0, keep: 1 });
  const t0 = performance.now();
  for (const r of reports) judge.judge(r.thing, 'cbor', r.payload);
  return reports.length / ((performance.now() - t0) / 1000);
}

async function collector(reports: Recorded[], store: Store, inFlight: number): Promise<{ rate: number; latencies: number[]; alerts: number }> {
  const detect = await createDetect({ store, profiles: [PROFILE], profileRefreshMs: 0, statisticsRefreshMs: 1000 });
  const judge = new Judge({ minPeriod: 0, keep: 1 });
  const latencies: number[] = [];
  let alerts = 0;
  const started = new Map<string, number>();
  detect.on('alert', (m: AlertMessage) => {
    alerts++;
    const t = started.get(m.thingName);
    if (t !== undefined) latencies.push(performance.now() - t);
  });
  const pending = new Set<Promise<unknown>>();
  const t0 = performance.now();
  for (const r of reports) {
    started.set(r.thing, performance.now());
    const v = judge.judge(r.thing, 'cbor', r.payload);
    if (v.verdict !== 'ACCEPTED') throw new Error(`${r.thing}: ${v.errorCode} ${v.errorMessage}`);
    const p = detect.process({ thing: r.thing, ...v });
    if (inFlight <= 1) await p;
    else {
      pending.add(p);
      void p.finally(() => pending.delete(p));
      if (pending.size >= inFlight) await Promise.race(pending);
    }
  }
  await detect.idle();
  const rate = reports.length / ((performance.now() - t0) / 1000);
  await detect.close();
  return { rate, latencies: latencies.sort((a, b) => a - b), alerts };
}

function row(backend: string, things: number, n: number, rate: number, peer: number, lat: number[], alerts: number) {
  return {
    backend,
    things,
    reports: n,
    'reports/s': Math.round(rate),
    target: TARGET,
    'rate / target': (rate / TARGET).toFixed(2),
    'judge alone /s (peer)': Math.round(peer),
    'rate / peer': (rate / peer).toFixed(3),
    alerts,
    'report→alert p50 ms': pct(lat, 0.5).toFixed(2),
    'report→alert p99 ms': pct(lat, 0.99).toFixed(2),
  };
}

const rows: any[] = [];
if (BACKENDS.includes('sqlite')) {
  const reports = record(THINGS);
  const peer = judgeOnly(reports);
  const dir = mkdtempSync(join(tmpdir(), 'detect-bench-'));
  const r = await collector(reports, openSqlite(join(dir, 'defender.db'), { pruneEveryMs: 0 }), 64);
  rows.push(row('sqlite (file, 64 in flight)', THINGS, reports.length, r.rate, peer, r.latencies, r.alerts));
  rmSync(dir, { recursive: true, force: true });
}
if (!BACKENDS.includes('postgres')) {
  // not asked for
} else if (!postgresBin) console.log('PostgreSQL: skipped (not installed)');
else {
  const things = Math.min(THINGS, 20_000);
  const reports = record(things);
  const peer = judgeOnly(reports);
  const server = await startPostgres();
  try {
    const { openPostgres } = await import('../service/store/postgres.ts');
    const r = await collector(reports, await openPostgres(server.url, { pruneEveryMs: 0, poolSize: 32 }), 32);
    rows.push(row('postgres (32 in flight)', things, reports.length, r.rate, peer, r.latencies, r.alerts));
  } finally {
    await server.stop();
  }
}
console.table(rows);
