// The dashboard over the Detect store (StoreFleet, what `npm start` serves): the real service, Detect on a real
// SQLite file, a simulated device running the built bundles (reporting every second; its MQTT connection counts).
// Charts, violations and profiles come from the store, and are still there after a restart; the last and rejected
// reports come from the verdicts.
import test from 'ava';
import { StoreFleet } from '../../service/http/store-fleet.ts';
import { startDashboard } from '../../service/http/server.ts';
import type { FleetEvent } from '../../service/http/data.ts';
import { until } from '../helpers/until.ts';
import { harness } from '../detect/helpers.ts';
import { echoServer, simDevice } from './helpers.ts';
import { device as rawDevice } from '../service/helpers.ts';

const CONNECTIONS = 'aws:num-established-tcp-connections';

const profile = {
  securityProfileName: 'fleet',
  behaviors: [
    { name: 'Connections', metric: CONNECTIONS, criteria: { comparisonOperator: 'less-than-equals', value: { count: 2 } } },
    { name: 'Bytes out', metric: 'aws:all-bytes-out', criteria: { comparisonOperator: 'less-than', value: { count: 100000000 }, durationSeconds: 60, consecutiveDatapointsToAlarm: 2, consecutiveDatapointsToClear: 3 } },
    { name: 'Listening ports', metric: 'aws:listening-tcp-ports' },
  ],
};

test('store-backed dashboard data: series, violations raised and cleared live, profiles with warnings, rejected reports, and the store after a restart', async (t) => {
  t.timeout(90_000);
  const h = await harness([profile]);
  t.teardown(() => h.close());
  const e = await echoServer();
  t.teardown(() => e.close());
  const fleet = new StoreFleet(h.detect, h.svc);
  t.teardown(() => fleet.close());
  const events: FleetEvent[] = [];
  fleet.subscribe((ev) => events.push(ev));
  const changes = () => events.flatMap((ev) => (ev.type === 'violation' ? [ev] : []));
  const seen = () => JSON.stringify(events);

  // MQTT + 1 echo connection: 2, within the rule; then 4, over it; then 2 again
  const dev = simDevice('fleet-1', h.svc.port, e.port, 1, 1);
  let running = true;
  const stop = () => running && ((running = false), dev.stop());
  t.teardown(stop);
  await until(() => events.some((ev) => ev.type === 'report'), 20_000, seen);
  dev.connections(3);
  await until(() => changes().length === 1, 20_000, seen);
  t.like(await fleet.violations({ active: true, limit: 10 }), [{ thing: 'fleet-1', profile: 'fleet', behavior: 'Connections', metric: CONNECTIONS, endedAt: undefined }]);
  dev.connections(1);
  await until(() => changes().length === 2, 20_000, seen);
  stop();
  await h.detect.idle();

  // a report the service refuses, from another client speaking for the same thing
  const raw = await rawDevice(h.svc.url, 'fleet-1', 'json', { clientId: 'fleet-1-raw' });
  t.is((await raw.send(Buffer.from('{not json'), true)).status, 'rejected');
  await raw.close();
  await until(() => events.some((ev) => ev.type === 'report' && ev.verdict === 'REJECTED'), 5000, seen);
  const reports = events.filter((ev) => ev.type === 'report');
  const accepted = reports.filter((ev) => ev.type === 'report' && ev.verdict === 'ACCEPTED').length;

  // live: the violation raised then cleared, as the dashboard's event stream carries them
  const [raised, cleared] = changes();
  t.like(raised, { state: 'raised', violation: { thing: 'fleet-1', behavior: 'Connections', endedAt: undefined } });
  t.true((raised.violation.value as number) > 2, JSON.stringify(raised));
  t.like(cleared, { state: 'cleared', violation: { id: raised.violation.id, startedAt: raised.violation.startedAt } });
  t.true((cleared.violation.value as number) <= 2 && cleared.violation.endedAt! >= cleared.violation.startedAt, JSON.stringify(cleared));

  const [row] = await fleet.things();
  t.like(row, { thing: 'fleet-1', lastVerdict: 'REJECTED', lastErrorCode: 'Malformed', reportsLastHour: reports.length, activeViolations: 0 });
  t.deepEqual(await fleet.things('nobody'), []);
  const values = (await fleet.series('fleet-1', CONNECTIONS, 0, Date.now())).map((p) => p[1]);
  t.is(values.length, accepted, 'one point per accepted report, from the store');
  t.is(values[0], 2);
  t.true(values.includes(raised.violation.value as number));
  t.is(values.at(-1), cleared.violation.value as number);
  t.true((await fleet.metrics('fleet-1')).includes('aws:all-bytes-out'));
  t.false((await fleet.metrics('fleet-1')).includes('aws:listening-tcp-ports'), 'lists are not charted');
  t.deepEqual(await fleet.series('fleet-1', CONNECTIONS, 0, 1000), [], 'nothing before the reports');
  t.like(fleet.latest('fleet-1'), { verdict: 'REJECTED', errorCode: 'Malformed', format: 'json' });
  t.like(fleet.rejected('fleet-1', 10), [{ errorCode: 'Malformed' }]);
  const [past] = await fleet.violations({ active: false, limit: 10 });
  t.like(past, { id: raised.violation.id, thing: 'fleet-1', behavior: 'Connections', value: cleared.violation.value, endedAt: cleared.violation.endedAt });
  t.deepEqual(await fleet.violations({ active: true, limit: 10 }), []);

  t.like(fleet.profiles(), [
    {
      name: 'fleet',
      targets: 'all things',
      behaviors: [
        { name: 'Connections', metric: CONNECTIONS, criteria: 'less-than-equals 2' },
        { name: 'Bytes out', metric: 'aws:all-bytes-out', criteria: 'less-than 100000000 over 60 s for 2 datapoints (3 to clear)' },
        { name: 'Listening ports', metric: 'aws:listening-tcp-ports', criteria: undefined },
      ],
    },
  ]);
  t.true(fleet.profiles()[0].warnings.some((w) => /durationSeconds: 60/.test(w)), JSON.stringify(fleet.profiles()[0].warnings));

  // through the dashboard's API
  const dash = await startDashboard(h.svc, { data: fleet });
  t.teardown(() => dash.close());
  const api = (await (await fetch(dash.url + 'api/violations')).json()) as any[];
  t.deepEqual(api.map((v) => v.id), [past.id]);

  // a restart: the store remembers what memory forgot
  await h.restart();
  const after = new StoreFleet(h.detect, h.svc);
  t.teardown(() => after.close());
  t.like(await after.things(), [{ thing: 'fleet-1', lastVerdict: 'ACCEPTED', reportsLastHour: accepted, activeViolations: 0 }]);
  t.deepEqual((await after.series('fleet-1', CONNECTIONS, 0, Date.now())).map((p) => p[1]), values);
  t.deepEqual((await after.violations({ limit: 10 })).map((v) => v.id), [past.id]);
  t.is(after.latest('fleet-1'), undefined, 'the documents are not stored');
});
