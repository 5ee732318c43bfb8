// Two collectors sharing one PostgreSQL store, handed one thing's consecutive reports in turn (as a broker's shared
// subscription does: mosquitto rotates strictly), and some reports twice (a redelivery to both): the same
// violations as one collector alone, every report evaluated once, none lost. Skipped, saying so, without PostgreSQL.
import test from 'ava';
import pg from 'pg';
import { createDetect, type AcceptedReport, type Detect } from '../../service/detect/detect.ts';
import { openPostgres } from '../../service/store/postgres.ts';
import { postgresBin, startPostgres, type Postgres } from '../helpers/postgres.ts';

let server: Postgres | undefined;
test.before(async () => {
  if (postgresBin) server = await startPostgres();
});
test.after.always(async () => {
  await server?.stop();
});

const PROFILE = {
  securityProfileName: 'shared',
  behaviors: [
    { name: 'conns', metric: 'aws:num-established-tcp-connections', criteria: { comparisonOperator: 'less-than-equals', value: { count: 1 }, consecutiveDatapointsToAlarm: 2, consecutiveDatapointsToClear: 2 } },
    { name: 'out', metric: 'aws:all-bytes-out', criteria: { comparisonOperator: 'less-than-equals', value: { count: 5000 }, durationSeconds: 300 } },
  ],
};

const THINGS = 12;
const CONNS = [0, 2, 2, 2, 0, 0, 2, 0, 2, 2, 0, 0, 3, 3];
const T0 = Date.UTC(2026, 10, 27, 12);

function report(thing: number, k: number): AcceptedReport {
  const rid = T0 + k * 300_000 + thing;
  const n = (CONNS[k] + thing) % 4;
  return {
    thing: `dev-${thing}`,
    reportId: rid,
    verdict: 'ACCEPTED',
    at: T0 + k * 10_000,
    doc: { hed: { rid, v: '1.0' }, met: { tc: { ec: { cs: [], t: n } }, ns: { bi: 0, bo: 1000 * ((k + thing) % 3), pi: 0, po: 0 } } },
  };
}

async function database(name: string): Promise<string> {
  const admin = new pg.Client({ connectionString: server!.url });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  return server!.url.replace(/\/postgres$/, `/${name}`);
}

async function collector(url: string): Promise<Detect> {
  return createDetect({ store: await openPostgres(url, { pruneEveryMs: 0 }), profiles: [PROFILE], profileRefreshMs: 0 });
}

const summary = async (d: Detect) =>
  (await d.store.violations({ all: true })).map((v) => `${v.thing} ${v.behavior} ${v.startedAt} ${v.endedAt} ${JSON.stringify(v.lastValue)}`).sort();

(postgresBin ? test : test.skip)(`two collectors on one PostgreSQL store raise and clear the same violations as one${postgresBin ? '' : ' (skipped: PostgreSQL is not installed)'}`, async (t) => {
  const one = await collector(await database('one'));
  const a = await collector(await database('shared'));
  const b = await collector(server!.url.replace(/\/postgres$/, '/shared'));
  t.teardown(async () => {
    for (const d of [one, a, b]) {
      await d.close();
      await d.store.close();
    }
  });
  const alerts = { one: 0, two: 0 };
  one.on('alert', () => alerts.one++);
  a.on('alert', () => alerts.two++);
  b.on('alert', () => alerts.two++);
  for (let k = 0; k < CONNS.length; k++) {
    // a round: every thing reports once; the things' reports are evaluated side by side
    const round: Promise<unknown>[] = [];
    for (let i = 0; i < THINGS; i++) {
      round.push(one.process(report(i, k)));
      const r = report(i, k);
      const to = (k + i) % 2 ? a : b;
      round.push(to.process(r));
      // every 5th report is delivered to both (a redelivery): it must be evaluated once
      if ((k * THINGS + i) % 5 === 0) round.push((to === a ? b : a).process(structuredClone(r)));
    }
    await Promise.all(round);
  }
  const expected = await summary(one);
  t.true(expected.length >= THINGS, `the sequence raises violations (${expected.length})`);
  t.deepEqual(await summary(a), expected);
  t.is(alerts.two, alerts.one, 'as many alerts');
  const c = new pg.Client({ connectionString: server!.url.replace(/\/postgres$/, '/shared') });
  await c.connect();
  const reports = Number((await c.query('SELECT count(*) AS n FROM reports')).rows[0].n);
  await c.end();
  t.is(reports, THINGS * CONNS.length, 'every report stored once, none lost');
  const last = Object.fromEntries((await a.store.things()).map((x) => [x.thing, x.lastReportId]));
  t.deepEqual(last, Object.fromEntries(Array.from({ length: THINGS }, (_, i) => [`dev-${i}`, report(i, CONNS.length - 1).reportId])));
});
