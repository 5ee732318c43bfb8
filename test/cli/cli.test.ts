// The fleet owner's CLI on a SQLite store written by Detect over the real service: things and their last report,
// a thing's metrics over time, active violations and their history, profiles validated and loaded; and `serve`, a
// collector on a real mosquitto.
import test from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../service/cli/cli.ts';
import { openSqlite } from '../../service/store/sqlite.ts';
import { echoServer, harness } from '../detect/helpers.ts';
import mqtt from 'mqtt';
import { mosquittoPath, startMosquitto } from '../helpers/mosquitto.ts';
import { until } from '../helpers/until.ts';
import { device, shortDoc } from '../service/helpers.ts';
import { makeFleetPki, startFleetMosquitto } from '../service/fleet.ts';

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(argv, { out: (l) => (out += l + '\n'), err: (l) => (err += l + '\n') });
  return { code, out, err };
}

test('things, metrics over time, violations (active and history) from what the service stored', async (t) => {
  const h = await harness([{ securityProfileName: 'cli', behaviors: [{ name: 'few', metric: 'aws:num-established-tcp-connections', criteria: { comparisonOperator: 'less-than', value: { count: 1 } } }] }]);
  t.teardown(() => h.close());
  const e = await echoServer();
  t.teardown(() => e.close());
  const dev = await h.device('cli-dev');
  await dev.report();
  const s = await new Promise<any>((r) => {
    const c = dev.net.connect({ host: '127.0.0.1', port: e.port }, () => r(c));
  });
  const [raised] = await dev.report();
  const store = ['--store', h.file];

  const things = await run(...store, 'things');
  t.is(things.code, 0, things.err);
  t.regex(things.out, /^THING\s+LAST REPORT\s+AT\s+ACTIVE VIOLATIONS\s+LAST METRICS\n/);
  t.regex(things.out, new RegExp(`cli-dev\\s+${raised.reportId}\\s+\\S+Z\\s+1\\s+num-established-tcp-connections=1 `));

  const metrics = await run(...store, 'metrics', 'cli-dev', '--metric', 'aws:num-established-tcp-connections');
  t.is(metrics.code, 0, metrics.err);
  const lines = metrics.out.trim().split('\n');
  t.is(lines.length, 3);
  t.regex(lines[1], /\s0$/);
  t.regex(lines[2], new RegExp(`${raised.reportId}\\s+1$`));
  const asJson = JSON.parse((await run(...store, '--json', 'metrics', 'cli-dev', '--since', '1h')).out);
  t.deepEqual(asJson.map((r: any) => r.metrics['aws:num-established-tcp-connections']), [0, 1]);
  t.deepEqual(JSON.parse((await run(...store, '--json', 'metrics', 'cli-dev', '--since', '2000-01-01', '--limit', '1')).out).length, 1);

  const active = await run(...store, 'violations');
  t.regex(active.out, new RegExp(`${raised.violationId}\\s+cli-dev\\s+cli/few\\s+aws:num-established-tcp-connections\\s+1\\s+\\S+Z\\s+active`));
  await new Promise<void>((r) => (s.on('close', () => r()), s.destroy()));
  await dev.report();
  t.is((await run(...store, 'violations')).out, 'no active violations\n');
  const history = JSON.parse((await run(...store, '--json', 'violations', '--all', '--thing', 'cli-dev')).out);
  t.is(history.length, 1);
  t.like(history[0], { id: raised.violationId, lastValue: 0 });
  t.not(history[0].endedAt, null);
});

test("metrics shows the broker's cloud-side intervals among the reports, in time order", async (t) => {
  const file = join(mkdtempSync(join(tmpdir(), 'cli-')), 'defender.db');
  const s = openSqlite(file);
  const at = Date.UTC(2026, 10, 27, 12);
  const report = (reportId: number, when: number) => (state: any) => ((state.lastReportId = reportId), { state, report: { reportId, at: when, metrics: { 'aws:all-bytes-out': 7 } }, violations: [], samples: [] });
  await s.update('dev', report(1, at));
  await s.update('dev', (state) => ({ state, cloud: { at: at + 1000, metrics: { 'aws:num-messages-sent': 4, 'aws:source-ip-address': ['10.0.0.1'] } }, violations: [], samples: [] }));
  await s.update('dev', report(2, at + 2000));
  await s.close();
  const m = await run('--store', file, 'metrics', 'dev');
  t.is(m.code, 0, m.err);
  t.deepEqual(
    m.out.trim().split('\n').map((l) => l.split(/\s+/)),
    [
      ['AT', 'REPORT', 'all-bytes-out', 'num-messages-sent', 'source-ip-address'],
      ['2026-11-27T12:00:00.000Z', '1', '7', '-', '-'],
      ['2026-11-27T12:00:01.000Z', 'broker', '-', '4', '[10.0.0.1]'],
      ['2026-11-27T12:00:02.000Z', '2', '7', '-', '-'],
    ],
  );
  const json = JSON.parse((await run('--store', file, '--json', 'metrics', 'dev', '--since', '2000-01-01', '--limit', '2')).out);
  t.deepEqual(json.map((r: any) => r.reportId), [null, 2], 'the 2 newest rows');
});

test('profile validate names the invalid field and exits 1; profile load puts valid ones into the store', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cli-'));
  const good = join(dir, 'good.json');
  const bad = join(dir, 'bad.json');
  writeFileSync(good, JSON.stringify({ securityProfileName: 'good', behaviors: [{ name: 'b', metric: 'aws:all-bytes-in', criteria: { comparisonOperator: 'less-than', value: { count: 9 } }, colour: 'red' }] }));
  writeFileSync(bad, JSON.stringify({ securityProfileName: 'bad', behaviors: [{ name: 'b', metric: 'aws:listening-tcp-ports', criteria: { comparisonOperator: 'less-than', value: { count: 9 } } }] }));
  const v = await run('profile', 'validate', good, bad);
  t.is(v.code, 1);
  t.is(v.out, `${good}: good, 1 behaviour(s), valid\n  warning: behaviors[0].colour: unknown field, kept and ignored\n`);
  t.regex(v.err, /bad\.json: invalid: behaviors\[0\]\.criteria\.comparisonOperator: is "less-than", which does not apply to aws:listening-tcp-ports/);
  t.is((await run('profile', 'validate', good)).code, 0);

  const db = join(dir, 'd.db');
  const l = await run('--store', db, 'profile', 'load', good, bad);
  t.is(l.code, 1);
  t.regex(l.out, /good\.json: good loaded \(1 behaviour\(s\)\)/);
  t.regex(l.err, /bad\.json: invalid, not loaded/);
  const s = openSqlite(db);
  t.deepEqual((await s.profiles()).map((p) => p.name), ['good']);
  await s.close();
  t.regex((await run('--store', db, 'profile', 'list')).out, /^good: 1 behaviour\(s\), loaded /);
  t.is((await run('--store', db, 'profile', 'delete', 'good')).code, 0);
  t.is((await run('--store', db, 'profile', 'delete', 'good')).code, 1);
  t.is((await run('--store', db, 'bogus')).code, 2);
  t.is((await run()).code, 2);
});

(mosquittoPath ? test : test.skip)(`serve: a collector on mosquitto, Detect on the store; the last report ids in the store, so a restarted collector refuses a replayed id${mosquittoPath ? '' : ' (skipped: mosquitto is not installed)'}`, async (t) => {
  t.is((await run('serve')).code, 2, 'no --broker');
  const usage = await run('serve', '--broker', 'mqtt://127.0.0.1:1', '--share-group', 'g');
  t.is(usage.code, 2);
  t.regex(usage.err, /with --share-group a --client-id/);
  const m = await startMosquitto();
  t.teardown(() => m.stop());
  const db = join(mkdtempSync(join(tmpdir(), 'cli-')), 'd.db');
  const profile = join(mkdtempSync(join(tmpdir(), 'cli-')), 'p.json');
  writeFileSync(profile, JSON.stringify({ securityProfileName: 'load', behaviors: [{ name: 'load', metric: 'load', criteria: { comparisonOperator: 'less-than', value: { number: 5 } } }] }));
  const device = await mqtt.connectAsync(`mqtt://127.0.0.1:${m.port}`, { clientId: 'cli-serve-dev' });
  t.teardown(() => device.endAsync(true));
  const answers: string[] = [];
  device.on('message', (_, p) => answers.push(`${JSON.parse(p.toString()).reportId} ${JSON.parse(p.toString()).status}`));
  await device.subscribeAsync('$aws/things/cli-serve-dev/defender/metrics/json/+', { qos: 1 });
  const send = (rid: number, load: number) => device.publishAsync('$aws/things/cli-serve-dev/defender/metrics/json', JSON.stringify({ hed: { rid, v: '1.0' }, cmet: { load: [{ number: load }] } }), { qos: 1 });
  const serve = async (reports: [number, number][]) => {
    const stop = new AbortController();
    const lines: string[] = [];
    const code = main(['--store', db, 'serve', '--broker', `mqtt://127.0.0.1:${m.port}`, '--client-id', 'cli-collector', '--profile', profile, '--min-period', '0'], { out: (l) => lines.push(l), err: (l) => lines.push(l) }, stop.signal);
    await until(() => lines.some((l) => l.startsWith('collecting on ')), 5000, () => lines.join('\n'));
    for (const [rid, load] of reports) {
      const before = answers.length;
      await send(rid, load);
      await until(() => answers.length > before, 5000, () => lines.join('\n'));
    }
    stop.abort();
    t.is(await code, 0);
    return lines;
  };
  const first = await serve([[1, 1], [2, 9]]);
  t.true(first.some((l) => /VIOLATION load\/load/.test(l)), first.join('\n'));
  await serve([[2, 1], [3, 1]]);
  t.deepEqual(answers, ['1 ACCEPTED', '2 ACCEPTED', '2 REJECTED', '3 ACCEPTED'], 'id 2 again, after a restart: rejected');
  const things = await run('--store', db, 'violations', '--all', '--json');
  t.like(JSON.parse(things.out), [{ thing: 'cli-serve-dev', behavior: 'load', lastValue: 1 }]);
});

(mosquittoPath ? test : test.skip)(`serve on the shipped mosquitto under mutual TLS: reports answered, and alerts published with Detect's own certificate${mosquittoPath ? '' : ' (skipped: mosquitto is not installed)'}`, async (t) => {
  const p = await makeFleetPki(['thing-a', 'thing-b', 'defender-operator', 'defender-detect']);
  const id = p.client('defender-service');
  const alert = p.client('defender-detect');
  const refused = async (why: RegExp, ...argv: string[]) => {
    const r = await run('serve', ...argv);
    t.is(r.code, 2, argv.join(' '));
    t.regex(r.err, why);
  };
  await refused(/needs --ca, --cert and --key/, '--broker', 'mqtts://127.0.0.1:1', '--ca', id.caFile);
  await refused(/go with an mqtts:\/\/ broker/, '--broker', 'mqtt://127.0.0.1:1', '--ca', id.caFile, '--cert', id.certFile, '--key', id.keyFile);
  await refused(/--alert-cert and --alert-key go together/, '--broker', 'mqtts://127.0.0.1:1', '--ca', id.caFile, '--cert', id.certFile, '--key', id.keyFile, '--alert-cert', alert.certFile);
  await refused(/--key \/nowhere\/k\.pem: no such file/, '--broker', 'mqtts://127.0.0.1:1', '--ca', id.caFile, '--cert', id.certFile, '--key', '/nowhere/k.pem');

  const m = await startFleetMosquitto(p);
  t.teardown(() => m.stop());
  const db = join(mkdtempSync(join(tmpdir(), 'cli-')), 'd.db');
  const profile = join(mkdtempSync(join(tmpdir(), 'cli-')), 'p.json');
  writeFileSync(profile, JSON.stringify({ securityProfileName: 'tls', behaviors: [{ name: 'No-connections', metric: 'aws:num-established-tcp-connections', criteria: { comparisonOperator: 'less-than', value: { count: 1 } } }] }));
  const operator = await mqtt.connectAsync(m.url, { clientId: 'defender-operator', reconnectPeriod: 0, ...p.tls('defender-operator') }, false);
  t.teardown(() => operator.endAsync(true));
  const alerts: any[] = [];
  operator.on('message', (_, payload) => alerts.push(JSON.parse(payload.toString())));
  await operator.subscribeAsync('defender/alerts/#', { qos: 1 });

  const serve = async (thing: string, ...alertFiles: string[]) => {
    const stop = new AbortController();
    const lines: string[] = [];
    const argv = ['--store', db, 'serve', '--broker', m.url, '--ca', id.caFile, '--cert', id.certFile, '--key', id.keyFile, ...alertFiles, '--profile', profile, '--min-period', '0'];
    const code = main(argv, { out: (l) => lines.push(l), err: (l) => lines.push(l) }, stop.signal);
    await until(() => lines.some((l) => l.startsWith('collecting on ')), 10_000, () => lines.join('\n') + m.log());
    const dev = await device(m.url, thing, 'json', p.tls(thing));
    t.is((await dev.send(shortDoc(1))).status, 'accepted');
    await until(() => lines.some((l) => l.includes(thing) && /in-alarm|VIOLATION/.test(l)), 10_000, () => lines.join('\n'));
    await dev.close();
    return { lines, stop: async () => (stop.abort(), t.is(await code, 0)) };
  };
  // without an identity of its own for the alert client: alerts in the log only, reports still answered
  const logged = await serve('thing-b');
  t.true(logged.lines.includes('alerts: in the log only (no --alert-cert: not published on the broker)'), logged.lines.join('\n'));
  await logged.stop();
  // with one: published on the broker, where the operator reads them
  const published = await serve('thing-a', '--alert-cert', alert.certFile, '--alert-key', alert.keyFile);
  await until(() => alerts.length > 0, 10_000, () => published.lines.join('\n') + m.log());
  await published.stop();
  t.deepEqual(alerts.map((a) => [a.thingName, a.violationEventType]), [['thing-a', 'in-alarm']]);
});
