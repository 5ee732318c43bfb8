// Two collectors sharing the report topics of one real mosquitto through a shared subscription ($share/GROUP/...),
// with one real PostgreSQL as their store, against one collector alone: devices running the built tinymqtt +
// defender report the same series to each setup. Asserted: the same violations raised and cleared, every report
// answered exactly once (by whichever collector the broker handed it to) and stored once, none lost; a report id
// that does not increase, handed to the other collector, is rejected as one collector rejects it.
// Skipped, saying so, without mosquitto or PostgreSQL.
import test from 'ava';
import mqtt from 'mqtt';
import pg from 'pg';
import { startService, type Service, type VerdictEvent } from '../../service/service.ts';
import { attachDetect, type AlertMessage, type Detect } from '../../service/detect/detect.ts';
import { openPostgres } from '../../service/store/postgres.ts';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { mosquittoPath } from '../helpers/mosquitto.ts';
import { freePort } from '../helpers/net.ts';
import { postgresBin, startPostgres, type Postgres } from '../helpers/postgres.ts';
import { until } from '../helpers/until.ts';
import { boardDevice, type BoardDevice } from './helpers.ts';

const ready = Boolean(mosquittoPath && postgresBin);
const skip = ready ? '' : ' (skipped: mosquitto or PostgreSQL is not installed)';
const serial = ready ? test.serial : test.skip;

let broker: { port: number; stop(): Promise<void> } | undefined;
let db: Postgres | undefined;
test.before(async () => {
  if (!ready) return;
  broker = await mosquitto();
  db = await startPostgres();
});
test.after.always(async () => {
  await broker?.stop();
  await db?.stop();
});

/** mosquitto 2.0 hands no topic starting with "$" to a shared subscription: a bridge to itself republishes the
 * reports under defender/share/ (the lines docs/service.md gives). */
const SHARE_PREFIX = 'defender/share/';
const SHARE_BRIDGE = [
  'connection defender-share',
  'address 127.0.0.1:PORT',
  `topic +/defender/metrics/cbor in 1 ${SHARE_PREFIX} $aws/things/`,
  `topic +/defender/metrics/json in 1 ${SHARE_PREFIX} $aws/things/`,
  'try_private false',
];

/** Debian's mosquitto on a free loopback port, with the bridge. */
async function mosquitto() {
  const port = await freePort();
  const conf = join(mkdtempSync(join(tmpdir(), 'mosquitto-')), 'mosquitto.conf');
  const lines = [`listener ${port} 127.0.0.1`, 'allow_anonymous true', 'persistence false', `user ${userInfo().username}`, ...SHARE_BRIDGE.map((l) => l.replace('PORT', String(port)))];
  writeFileSync(conf, lines.join('\n') + '\n');
  const child = spawn(mosquittoPath!, ['-c', conf], { stdio: 'ignore' });
  const exited = new Promise((r) => child.once('exit', r));
  for (const end = Date.now() + 5000; ; await new Promise((r) => setTimeout(r, 50))) {
    const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0, connectTimeout: 500 }).catch(() => undefined);
    if (c) {
      await c.endAsync(true);
      break;
    }
    if (Date.now() > end) throw new Error('mosquitto did not start');
  }
  return {
    port,
    async stop() {
      child.kill('SIGKILL');
      await exited;
    },
  };
}

const PROFILE = {
  securityProfileName: 'shared',
  behaviors: [
    { name: 'load', metric: 'load', criteria: { comparisonOperator: 'less-than-equals', value: { number: 5 }, consecutiveDatapointsToAlarm: 2, consecutiveDatapointsToClear: 2 } },
    { name: 'apps', metric: 'apps', criteria: { comparisonOperator: 'in-set', value: { strings: ['sensor'] } } },
  ],
};

let databases = 0;
async function database(): Promise<string> {
  const name = `shared_${++databases}`;
  const admin = new pg.Client({ connectionString: db!.url });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  return db!.url.replace(/\/postgres$/, `/${name}`);
}

interface Collectors {
  services: Service[];
  /** Every verdict, with the index of the collector that gave it. */
  verdicts: (VerdictEvent & { by: number })[];
  alerts: AlertMessage[];
  url: string;
  idle(): Promise<void>;
  close(): Promise<void>;
}

/** `n` collectors on the broker, one database; with n > 1 they share the report topics. */
async function collectors(n: number): Promise<Collectors> {
  const url = await database();
  const services: Service[] = [];
  const detects: Detect[] = [];
  const verdicts: Collectors['verdicts'] = [];
  const alerts: AlertMessage[] = [];
  const run = databases;
  for (let i = 0; i < n; i++) {
    const store = await openPostgres(url, { pruneEveryMs: 0 });
    const svc = await startService({
      broker: `mqtt://127.0.0.1:${broker!.port}`,
      clientId: `collector-${run}-${i}`,
      ledger: store,
      shareGroup: n > 1 ? `detect-${run}` : undefined,
      sharePrefix: SHARE_PREFIX,
      minPeriod: 0,
    });
    svc.on('verdict', (v) => verdicts.push({ ...v, by: i }));
    const detect = await attachDetect(svc, { store, profiles: [PROFILE], profileRefreshMs: 0, alerts: { topic: false, log: false } });
    detect.on('alert', (m) => alerts.push(m));
    services.push(svc);
    detects.push(detect);
  }
  return {
    services,
    verdicts,
    alerts,
    url,
    idle: async () => {
      for (const d of detects) await d.idle();
    },
    async close() {
      for (const d of detects) await d.close();
      for (const s of services) await s.close();
    },
  };
}

/** Every answer on the broker, as "thing reportId STATUS [ErrorCode]". */
async function observe(t: any): Promise<string[]> {
  const answers: string[] = [];
  const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${broker!.port}`, { clientId: `observer-${Date.now()}` });
  t.teardown(() => c.endAsync(true));
  c.on('message', (topic, payload) => {
    const a = JSON.parse(payload.toString());
    answers.push(`${a.thingName} ${a.reportId} ${a.status}${a.statusDetails ? ' ' + a.statusDetails.ErrorCode : ''}`);
  });
  await c.subscribeAsync('$aws/things/+/defender/metrics/json/+', { qos: 1 });
  return answers;
}

const THINGS = 4;
/** Each thing's custom metrics report after report: `load` over 5 twice in a row raises, twice under 5 clears. */
const LOAD = [1, 7, 8, 9, 2, 3, 8, 2, 9, 9, 1, 1];
const APPS = [0, 0, 1, 0, 0, 0, 1, 1, 0, 0, 0, 0];

/** The series from THINGS devices on `c`, reporting side by side; each device's alerts as "thing step type value". */
async function series(c: Collectors, tag: string): Promise<string[]> {
  const devices: BoardDevice[] = [];
  const seen: string[] = [];
  try {
    for (let i = 0; i < THINGS; i++) devices.push(await boardDevice({ thing: `${tag}-${i}`, format: 'json', port: () => broker!.port, alerts: c.alerts, idle: () => c.idle() }));
    for (let k = 0; k < LOAD.length; k++) {
      await Promise.all(
        devices.map(async (dev, i) => {
          dev.custom = { load: { number: LOAD[(k + i) % LOAD.length] }, apps: { string_list: APPS[(k + i) % APPS.length] ? ['sensor', 'miner'] : ['sensor'] } };
          for (const a of await dev.report()) seen.push(`${i} ${k} ${a.behavior.name} ${a.violationEventType} ${JSON.stringify(a.metricValue)}`);
        }),
      );
    }
  } finally {
    for (const d of devices) d.stop();
  }
  return seen.sort();
}

serial(`two collectors sharing the report topics raise and clear the same violations as one, each report answered once${skip}`, async (t) => {
  const answers = await observe(t);

  const one = await collectors(1);
  t.teardown(() => one.close());
  const alone = await series(one, 'solo');
  await one.close();

  const two = await collectors(2);
  t.teardown(() => two.close());
  const shared = await series(two, 'pair');
  await two.close();

  t.true(alone.length >= 2 * THINGS, `the series raises and clears violations (${alone.length} alerts)`);
  t.deepEqual(shared, alone, 'the same alerts, at the same reports');
  const by = [0, 1].map((i) => two.verdicts.filter((v) => v.by === i).length);
  t.true(by[0] > 0 && by[1] > 0, `both collectors judged reports (${by.join(' and ')})`);
  t.is(two.verdicts.length, THINGS * LOAD.length, 'each report judged once');

  const pair = answers.filter((a) => a.startsWith('pair-'));
  t.is(pair.length, THINGS * LOAD.length, 'each report answered once');
  t.is(new Set(pair).size, pair.length, 'no answer twice');
  t.true(pair.every((a) => a.endsWith(' ACCEPTED')), pair.filter((a) => !a.endsWith(' ACCEPTED')).join(', '));

  const c = new pg.Client({ connectionString: two.url });
  await c.connect();
  t.teardown(() => c.end());
  t.is(Number((await c.query('SELECT count(*) AS n FROM reports')).rows[0].n), THINGS * LOAD.length, 'every report stored once, none lost');
  const violations = (await c.query("SELECT thing, behavior, ended_at IS NULL AS active FROM violations ORDER BY thing, behavior, started_at")).rows;
  const c1 = new pg.Client({ connectionString: one.url });
  await c1.connect();
  t.teardown(() => c1.end());
  const expected = (await c1.query("SELECT replace(thing, 'solo-', 'pair-') AS thing, behavior, ended_at IS NULL AS active FROM violations ORDER BY thing, behavior, started_at")).rows;
  t.deepEqual(violations, expected, 'the same violations in the store');
});

/** A raw client publishing JSON reports of one thing. */
async function publisher(t: any, thing: string) {
  const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${broker!.port}`, { clientId: `pub-${thing}` });
  t.teardown(() => c.endAsync(true));
  return (rid: number, load: number) => c.publishAsync(`$aws/things/${thing}/defender/metrics/json`, JSON.stringify({ hed: { rid, v: '1.0' }, cmet: { load: [{ number: load }] } }), { qos: 1 });
}

serial(`a report id that does not increase is rejected by the other collector as by one${skip}`, async (t) => {
  const answers = await observe(t);
  // the same sequence to one collector, then to two: a repeated id (another payload), a lower one, a redelivery
  const sequence: [number, number][] = [
    [10, 1],
    [10, 2],
    [11, 1],
    [9, 1],
    [12, 1],
    [12, 1],
    [12, 3],
    [13, 1],
  ];
  const run = async (c: Collectors, thing: string) => {
    const send = await publisher(t, thing);
    for (const [i, [rid, load]] of sequence.entries()) {
      await send(rid, load);
      await until(() => answers.filter((a) => a.startsWith(thing + ' ')).length > i, 5000, () => `${thing}: answers ${answers.join(', ')}`);
    }
    return answers.filter((a) => a.startsWith(thing + ' ')).map((a) => a.slice(thing.length + 1));
  };
  const one = await collectors(1);
  t.teardown(() => one.close());
  const alone = await run(one, 'replay-solo');
  await one.close();
  t.deepEqual(alone, ['10 ACCEPTED', '10 REJECTED InvalidPayload', '11 ACCEPTED', '9 REJECTED InvalidPayload', '12 ACCEPTED', '12 ACCEPTED', '12 REJECTED InvalidPayload', '13 ACCEPTED']);

  const two = await collectors(2);
  t.teardown(() => two.close());
  t.deepEqual(await run(two, 'replay-pair'), alone);
  // the broker rotates strictly: a repeat went to the collector that had not accepted the id
  const judged = two.verdicts.map((v) => `${v.reportId} ${v.verdict} ${v.by}`);
  const acceptedBy = (rid: number) => two.verdicts.find((v) => v.reportId === rid && v.verdict === 'ACCEPTED')!.by;
  t.true(
    two.verdicts.some((v) => v.verdict === 'REJECTED' && v.by !== acceptedBy(v.reportId!)),
    `a rejected repeat judged by the other collector: ${judged.join(', ')}`,
  );
});
