// The store interface, the same tests on each backend: SQLite (a temp file) and PostgreSQL (a private cluster
// started for this file; skipped, saying so, when PostgreSQL is not installed).
import test from 'ava';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { openSqlite } from '../../service/store/sqlite.ts';
import { openPostgres } from '../../service/store/postgres.ts';
import { DAY, type Commit, type Store, type StoreOptions, type Violation } from '../../service/store/store.ts';
import { postgresBin, startPostgres, type Postgres } from '../helpers/postgres.ts';

let server: Postgres | undefined;
let dbs = 0;

test.before(async () => {
  if (postgresBin) server = await startPostgres();
});
test.after.always(async () => {
  await server?.stop();
});

type Open = (opts?: StoreOptions) => Promise<Store>;

const backends: ['sqlite' | 'postgres', Open][] = [
  ['sqlite', async (opts) => openSqlite(join(mkdtempSync(join(tmpdir(), 'store-')), 'defender.db'), { pruneEveryMs: 0, ...opts })],
  [
    'postgres',
    async (opts) => {
      const name = `t${++dbs}`;
      const admin = new pg.Client({ connectionString: server!.url });
      await admin.connect();
      await admin.query(`CREATE DATABASE ${name}`);
      await admin.end();
      return openPostgres(server!.url.replace(/\/postgres$/, `/${name}`), { pruneEveryMs: 0, ...opts });
    },
  ],
];

const NOW = Date.UTC(2026, 10, 27, 12);

function commit(reportId: number, at: number, extra: Partial<Commit> = {}): (s: any) => Commit {
  return (state) => {
    state.lastReportId = reportId;
    state.lastAt = at;
    return { state, report: { reportId, at, metrics: { 'aws:all-bytes-out': reportId * 10, apps: ['a'] } }, violations: [], samples: [], ...extra };
  };
}

const violation = (id: string, thing: string, startedAt: number): Violation => ({
  id,
  thing,
  profile: 'p',
  behavior: 'b',
  metric: 'aws:all-bytes-out',
  startedAt,
  endedAt: null,
  lastValue: 5000,
  lastAt: startedAt,
  behaviorDoc: { name: 'b', metric: 'aws:all-bytes-out' },
});

for (const [kind, open] of backends) {
  const t0 = kind === 'postgres' && !postgresBin ? test.skip : test;
  const name = (s: string) => `${kind}: ${s}${kind === 'postgres' && !postgresBin ? ' (skipped: PostgreSQL is not installed)' : ''}`;

  t0(name("the judge's ledger: of two stores claiming one report, one wins; an id not above the last, or too soon, is refused"), async (t) => {
    // two connections to one store, as two collectors have
    const file = join(mkdtempSync(join(tmpdir(), 'store-')), 'defender.db');
    const a = kind === 'sqlite' ? openSqlite(file, { pruneEveryMs: 0 }) : await open();
    t.teardown(() => a.close());
    const b = kind === 'sqlite' ? openSqlite(file, { pruneEveryMs: 0 }) : a;
    if (b !== a) t.teardown(() => b.close());
    const d = (x: number) => Buffer.alloc(16, x);
    const big = 2n ** 63n - 1n;
    t.is(await a.lastAccepted('dev-1'), undefined);
    const claims = await Promise.all([a.claim('dev-1', { id: 5n, at: NOW, digest: d(1) }, 0), b.claim('dev-1', { id: 5n, at: NOW, digest: d(2) }, 0)]);
    t.is(claims.filter((c) => c === undefined).length, 1, 'one claim of id 5 wins');
    const won = claims.indexOf(undefined);
    t.deepEqual(claims[1 - won], { id: 5n, at: NOW, digest: d(won + 1) }, 'the other is told the last accepted report');
    t.deepEqual(await b.claim('dev-1', { id: 4n, at: NOW + 1000, digest: d(3) }, 0), { id: 5n, at: NOW, digest: d(won + 1) }, 'a lower id');
    t.deepEqual(await a.claim('dev-1', { id: 6n, at: NOW + 999, digest: d(3) }, 1000), { id: 5n, at: NOW, digest: d(won + 1) }, 'too soon');
    t.is(await a.claim('dev-1', { id: 6n, at: NOW + 1000, digest: d(3) }, 1000), undefined, 'minPeriod later');
    t.is(await b.claim('dev-1', { id: big, at: NOW + 2000, digest: d(4) }, 0), undefined);
    t.deepEqual(await a.lastAccepted('dev-1'), { id: big, at: NOW + 2000, digest: d(4) }, 'a 63-bit id exactly');
    t.is(await a.claim('dev-2', { id: 1n, at: NOW, digest: d(5) }, 1000), undefined, 'per thing');
  });

  t0(name('reports, things, state and violations: written in one update, read back'), async (t) => {
    const s = await open();
    t.teardown(() => s.close());
    t.is(s.kind, kind);
    t.is(s.retentionDays, 30, 'default retention');
    await s.update('dev-1', commit(1, NOW));
    await s.update('dev-1', commit(2, NOW + 1000, { violations: [{ kind: 'open', violation: violation('v-1', 'dev-1', NOW + 1000) }] }));
    await s.update('dev-2', commit(7, NOW + 2000));
    await s.update('dev-1', commit(3, NOW + 3000, { violations: [{ kind: 'update', id: 'v-1', at: NOW + 3000, value: 6000 }] }));
    t.deepEqual(await s.things(), [
      { thing: 'dev-1', lastReportId: 3, lastAt: NOW + 3000, active: 1 },
      { thing: 'dev-2', lastReportId: 7, lastAt: NOW + 2000, active: 0 },
    ]);
    t.deepEqual(
      (await s.reports('dev-1')).map((r) => [r.reportId, r.at, r.metrics['aws:all-bytes-out']]),
      [
        [1, NOW, 10],
        [2, NOW + 1000, 20],
        [3, NOW + 3000, 30],
      ],
    );
    t.deepEqual((await s.reports('dev-1', { limit: 2 })).map((r) => r.reportId), [2, 3], 'the newest, oldest first');
    t.deepEqual((await s.reports('dev-1', { since: NOW + 500, until: NOW + 1500 })).map((r) => r.reportId), [2]);
    t.deepEqual((await s.reports('dev-1'))[0].metrics.apps, ['a']);
    const [v] = await s.violations();
    t.deepEqual(v, { ...violation('v-1', 'dev-1', NOW + 1000), lastValue: 6000, lastAt: NOW + 3000 });
    await s.update('dev-1', commit(4, NOW + 4000, { violations: [{ kind: 'close', id: 'v-1', at: NOW + 4000, value: 10 }] }));
    t.deepEqual(await s.violations(), []);
    t.like((await s.violations({ all: true }))[0], { id: 'v-1', endedAt: NOW + 4000, lastValue: 10 });
    t.deepEqual(await s.violations({ all: true, thing: 'dev-2' }), []);
    let seen: any;
    await s.update('dev-1', (state) => ((seen = state), null));
    t.is(seen.lastReportId, 4, 'the state as last written');
    t.is((await s.reports('dev-1')).length, 4, 'null writes nothing');
  });

  t0(name('updates of one thing run one after another, each seeing the last one\'s state'), async (t) => {
    const s = await open();
    t.teardown(() => s.close());
    await Promise.all(
      Array.from({ length: 20 }, () =>
        s.update('busy', (state) => {
          const n = (state.lastReportId ?? 0) + 1;
          state.lastReportId = n;
          return { state, report: { reportId: n, at: NOW + n, metrics: {} }, violations: [], samples: [] };
        }),
      ),
    );
    t.is((await s.things())[0].lastReportId, 20);
    t.is((await s.reports('busy')).length, 20);
  });

  t0(name('retention: reports, cleared violations and samples older than it are pruned; active violations stay'), async (t) => {
    const s = await open({ retentionDays: 7 });
    t.teardown(() => s.close());
    const old = NOW - 8 * DAY;
    await s.update('dev-1', commit(1, old, { violations: [{ kind: 'open', violation: violation('old-active', 'dev-1', old) }], samples: [{ profile: 'p', behavior: 's', at: old, value: 1 }] }));
    await s.update('dev-2', commit(1, old, { violations: [{ kind: 'open', violation: violation('old-cleared', 'dev-2', old) }] }));
    await s.update('dev-2', commit(2, old + 1, { violations: [{ kind: 'close', id: 'old-cleared', at: old + 1, value: 0 }] }));
    await s.update('dev-1', commit(2, NOW - 6 * DAY));
    t.is(await s.prune(NOW), 5, '3 reports (2 of dev-2, 1 of dev-1), 1 cleared violation, 1 sample');
    t.deepEqual((await s.reports('dev-1')).map((r) => r.reportId), [2]);
    t.deepEqual(await s.reports('dev-2'), []);
    t.deepEqual((await s.violations({ all: true })).map((v) => v.id), ['old-active']);
    t.is(await s.percentile('p', 's', 0.5, 0), undefined);
  });

  t0(name("the broker's cloud-side metrics: a row per interval written with the state (and no report), read back oldest first, pruned"), async (t) => {
    const s = await open({ retentionDays: 1 });
    t.teardown(() => s.close());
    const row = (at: number, sent: number) => ({ at, metrics: { 'aws:num-messages-sent': sent, 'aws:source-ip-address': ['10.0.0.1'] } });
    for (const [at, sent] of [[NOW - 2 * DAY, 1], [NOW - 2000, 2], [NOW - 1000, 3]]) {
      await s.update('dev-1', (state) => ({ state, cloud: row(at, sent), violations: [], samples: [] }));
    }
    t.deepEqual(await s.cloudMetrics('dev-1', { since: NOW - DAY }), [row(NOW - 2000, 2), row(NOW - 1000, 3)]);
    t.deepEqual(await s.cloudMetrics('dev-1', { limit: 1 }), [row(NOW - 1000, 3)], 'the newest');
    t.deepEqual(await s.reports('dev-1'), [], 'no report');
    t.like((await s.things())[0], { thing: 'dev-1', lastReportId: null });
    t.is(await s.prune(NOW), 1);
    t.deepEqual((await s.cloudMetrics('dev-1')).map((r) => r.at), [NOW - 2000, NOW - 1000]);
  });

  t0(name('the fleet percentile (nearest rank) over the samples inside the window'), async (t) => {
    const s = await open();
    t.teardown(() => s.close());
    for (const [i, v] of [5, 1, 3, 2, 4, 100].entries()) {
      await s.update(`dev-${i}`, commit(1, NOW, { samples: [{ profile: 'p', behavior: 'b', at: i === 5 ? NOW - 1000 : NOW, value: v }] }));
    }
    t.is(await s.percentile('p', 'b', 0.5, NOW), 3, 'p50 of 1..5');
    t.is(await s.percentile('p', 'b', 0.9, NOW), 5);
    t.is(await s.percentile('p', 'b', 0, NOW), 1);
    t.is(await s.percentile('p', 'b', 1, NOW - 1000), 100, 'p100 with the older sample in the window');
    t.is(await s.percentile('p', 'other', 0.5, 0), undefined);
  });

  t0(name('profiles: put, replace, list, delete'), async (t) => {
    const s = await open();
    t.teardown(() => s.close());
    await s.putProfile('a', { securityProfileName: 'a', behaviors: [] });
    await s.putProfile('a', { securityProfileName: 'a', behaviors: [{ name: 'x', metric: 'aws:all-bytes-in' }] });
    await s.putProfile('b', { securityProfileName: 'b' });
    const list = await s.profiles();
    t.deepEqual(
      list.map((p) => [p.name, (p.doc.behaviors as unknown[] | undefined)?.length]),
      [
        ['a', 1],
        ['b', undefined],
      ],
    );
    t.true(await s.deleteProfile('b'));
    t.false(await s.deleteProfile('b'));
    t.is((await s.profiles()).length, 1);
  });
}

test('sqlite: pruned automatically on a timer, and at open', async (t) => {
  const file = join(mkdtempSync(join(tmpdir(), 'store-')), 'defender.db');
  const s = openSqlite(file, { retentionDays: 1, pruneEveryMs: 20 });
  await s.update('dev', commit(1, Date.now() - 2 * DAY));
  await s.update('dev', commit(2, Date.now()));
  const deadline = Date.now() + 5000;
  while ((await s.reports('dev')).length > 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  t.deepEqual((await s.reports('dev')).map((r) => r.reportId), [2]);
  await s.update('dev', commit(3, Date.now() - 2 * DAY));
  await s.close();
  const again = openSqlite(file, { retentionDays: 1, pruneEveryMs: 0 });
  t.teardown(() => again.close());
  t.deepEqual((await again.reports('dev')).map((r) => r.reportId), [2], 'pruned when opened');
});
