// Memory the fleet cannot grow: junk thing names leave nothing behind, big reports are not hoarded, and the number
// of things held is capped. Checked on what the service holds (its things and recent reports), through the real
// broker; the heap figures are in the notes (node --expose-gc, see the README).
import test from 'ava';
import mqtt from 'mqtt';
import { startService } from '../../service/service.ts';
import { device, shortDoc, encode } from './helpers.ts';
import { until } from '../helpers/until.ts';

test('2,000 reports under junk thing names: each answered REJECTED, none of the names kept', async (t) => {
  const svc = await startService({ port: 0, minPeriod: 0 });
  t.teardown(() => svc.close());
  const c = await mqtt.connectAsync(svc.url, { clientId: 'junk', reconnectPeriod: 0 });
  t.teardown(() => c.endAsync(true));
  await c.subscribeAsync('$aws/things/+/defender/metrics/cbor/+', { qos: 1 });
  const answers: string[] = [];
  c.on('message', (topic) => answers.push(topic.split('/').pop()!));
  const events: unknown[] = [];
  svc.on('verdict', (v) => events.push(v));
  const payload = encode(shortDoc(1), 'cbor');
  await Promise.all(Array.from({ length: 2000 }, (_, i) => c.publishAsync(`$aws/things/junk name ${i} é/defender/metrics/cbor`, payload, { qos: 1 })));
  await until(() => answers.length >= 2000, 60_000, () => `${answers.length} answers`);
  t.deepEqual([...new Set(answers)], ['rejected']);
  t.deepEqual(svc.things(), []);
  t.deepEqual(svc.reports('junk name 0 é'), []);
  t.is(events.length, 0, 'not a thing: no verdict event either');
});

test('25 things sending 120 KB reports: documents kept for the 20 most recent reports only, not 20 per thing', async (t) => {
  const svc = await startService({ port: 0, minPeriod: 0 });
  t.teardown(() => svc.close());
  const big = (rid: number) => ({ ...shortDoc(rid), cmet: { big: [{ string_list: Array.from({ length: 50 }, (_, i) => 'x'.repeat(2400) + i) }] } });
  t.true(encode(big(1), 'cbor').length > 115 * 1024);
  const things = Array.from({ length: 25 }, (_, i) => `big-${i}`);
  const devices = await Promise.all(things.map((name) => device(svc.url, name, 'cbor')));
  t.teardown(() => Promise.all(devices.map((d) => d.close())));
  for (let rid = 1; rid <= 4; rid++) {
    const answers = await Promise.all(devices.map((d) => d.send(big(rid))));
    t.deepEqual([...new Set(answers.map((a) => a.status))], ['accepted']);
  }
  const kept = things.flatMap((name) => svc.reports(name));
  t.is(kept.length, 20);
  t.true(kept.every((r) => r.doc !== undefined));
  t.is(svc.things().length, 25);
});

test('maxThings caps the things held: the one silent longest is forgotten', async (t) => {
  const logs: string[] = [];
  const svc = await startService({ port: 0, minPeriod: 0, maxThings: 3, log: (s) => logs.push(s) });
  t.teardown(() => svc.close());
  for (const name of ['t-1', 't-2', 't-3', 't-4']) {
    const d = await device(svc.url, name, 'cbor');
    t.is((await d.send(shortDoc(1))).status, 'accepted');
    await d.close();
  }
  t.deepEqual(svc.things(), ['t-2', 't-3', 't-4']);
  t.true(logs.includes('[t-1] forgotten: more than 3 things'));
});
