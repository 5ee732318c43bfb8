// The alert topic in the secure configurations: the service publishes its alerts itself on the embedded broker
// (not as a client that the policy would refuse or TLS would not let in), an operator reads them, a thing neither
// reads nor forges them; and on an external broker that refuses them, closing is not held up. Real service, real
// brokers (aedes, and mosquitto on the shipped configuration), real MQTT clients.
import test, { type ExecutionContext } from 'ava';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import mqtt, { type MqttClient, type IClientOptions } from 'mqtt';
import { Aedes } from 'aedes';
import { until } from '../helpers/until.ts';
import { harness, type Harness } from './helpers.ts';
import { device, shortDoc } from '../service/helpers.ts';
import { makeFleetPki, startFleetMosquitto, type FleetPki } from '../service/fleet.ts';
import { startService, type ServiceOptions } from '../../service/service.ts';
import { attachDetect, type AlertMessage } from '../../service/detect/detect.ts';
import { openSqlite } from '../../service/store/sqlite.ts';

const OPERATOR = 'ops-console';

let pki: Promise<FleetPki> | undefined;
const fleetPki = () => (pki ??= makeFleetPki(['thing-a', OPERATOR]));

interface Mode {
  service: () => Promise<ServiceOptions>;
  /** Client options for `name` (its certificate, under TLS). */
  as: (name: string) => Promise<IClientOptions>;
}

const MODES: Record<string, Mode> = {
  "access 'thing'": { service: async () => ({ access: 'thing', operators: [OPERATOR] }), as: async () => ({}) },
  'mutual TLS': {
    service: async () => {
      const p = await fleetPki();
      return { tls: { caFile: p.caFile, certFile: p.certFile, keyFile: p.keyFile }, operators: [OPERATOR] };
    },
    as: async (name) => (await fleetPki()).tls(name),
  },
};

async function connect(t: ExecutionContext, h: Harness, mode: Mode, name: string): Promise<MqttClient> {
  const c = await mqtt.connectAsync(h.svc.url, { clientId: name, reconnectPeriod: 0, ...(await mode.as(name)) }, false);
  c.on('error', () => {});
  t.teardown(() => c.endAsync(true));
  return c;
}

/** What `c` is granted of each filter (128: refused). */
const grants = (c: MqttClient, filters: string[]) =>
  c.subscribeAsync(filters, { qos: 1 }).then(
    (g) => g.map((x) => x.qos),
    (err) => err.packet.granted as number[], // mqtt.js: an error when every one is refused
  );

for (const [name, mode] of Object.entries(MODES)) {
  test(`${name}: a thing may neither read nor forge alerts; its attempts raise a violation whose alert reaches the operator`, async (t) => {
    const behaviors = [{ name: 'No-authorization-failures', metric: 'aws:num-authorization-failures', criteria: { comparisonOperator: 'less-than', value: { count: 1 } } }];
    const h = await harness([{ securityProfileName: 'forgery', things: ['thing-a'], behaviors }], { cloudIntervalSeconds: 0.25 }, undefined, await mode.service());
    t.teardown(() => h.close());
    const ops = await connect(t, h, mode, OPERATOR);
    const got: { topic: string; body: any }[] = [];
    ops.on('message', (topic, payload) => got.push({ topic, body: JSON.parse(payload.toString()) }));
    t.deepEqual(await grants(ops, ['defender/alerts/#']), [1], 'the operator reads every thing\'s alerts');

    const thing = await connect(t, h, mode, 'thing-a');
    t.deepEqual(await grants(thing, ['defender/alerts/#', 'defender/alerts/thing-a']), [128, 128], 'not even its own');
    // aedes closes the connection of a client publishing where its policy does not allow
    const closed = new Promise<void>((r) => thing.once('close', () => r()));
    thing.publish('defender/alerts/thing-a', JSON.stringify({ thingName: 'thing-a', violationEventType: 'alarm-cleared' }), { qos: 1 });
    await closed;

    await until(() => got.length > 0, 10_000, () => h.logs.join('\n'));
    const raised: AlertMessage = h.alerts[0];
    t.like(raised, { thingName: 'thing-a', violationEventType: 'in-alarm' });
    t.deepEqual(got[0], { topic: 'defender/alerts/thing-a', body: raised }, "the service's alert, not the forged one");
    t.false(got.some((g) => g.body.violationEventType === 'alarm-cleared' && !g.body.violationId), 'the forgery never arrived');
    const start = Date.now();
    await h.close();
    t.true(Date.now() - start < 3000, `closed in ${Date.now() - start} ms`);
  });
}

test("open (development on loopback): anyone reads alerts, but only the service writes them", async (t) => {
  const h = await harness([{ securityProfileName: 'open', behaviors: [] }]);
  t.teardown(() => h.close());
  const c = await mqtt.connectAsync(h.svc.url, { clientId: 'anyone', reconnectPeriod: 0 }, false);
  c.on('error', () => {});
  t.teardown(() => c.endAsync(true));
  t.deepEqual(await grants(c, ['defender/alerts/#']), [1]);
  const outcome = Promise.race([
    c.publishAsync('defender/alerts/someone', '{}', { qos: 1 }).then(() => 'acknowledged'),
    new Promise((r) => c.once('close', () => r('connection closed'))),
  ]);
  t.is(await outcome, 'connection closed');
});

test('external broker refusing the alert topic: the service closes promptly with an alert in flight, and says so', async (t) => {
  // a real broker of the kind that refuses by closing the connection (aedes; MQTT 3.1.1 has no negative PUBACK), so
  // the alert is never acknowledged however often the client sends it again
  let refused = 0;
  const broker = await Aedes.createBroker({
    authorizePublish: (_client, packet, done) => done(packet.topic.startsWith('defender/alerts/') ? (refused++, new Error('not allowed')) : null),
  });
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
    broker.handle(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(async () => {
    await new Promise<void>((r) => broker.close(() => r()));
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  });
  const svc = await startService({ broker: `mqtt://127.0.0.1:${(server.address() as AddressInfo).port}`, minPeriod: 0 });
  const logs: string[] = [];
  const behaviors = [{ name: 'No-connections', metric: 'aws:num-established-tcp-connections', criteria: { comparisonOperator: 'less-than', value: { count: 1 } } }];
  const detect = await attachDetect(svc, { store: openSqlite(':memory:'), profiles: [{ securityProfileName: 'refused', behaviors }], profileRefreshMs: 0, log: (l) => logs.push(l) });
  const alerts: AlertMessage[] = [];
  detect.on('alert', (m) => alerts.push(m));
  const dev = await device(svc.url, 'thing-x', 'json');
  t.teardown(() => dev.close());
  t.is((await dev.send(shortDoc(1))).status, 'accepted');
  await until(() => alerts.length === 1, 5000, () => logs.join('\n'));
  await until(() => refused > 0, 5000, () => logs.join('\n'));

  const start = Date.now();
  const closing = detect.close().then(() => svc.close()).then(() => 'closed');
  const outcome = await Promise.race([closing, new Promise((r) => setTimeout(() => r('still closing after 10 s'), 10_000))]);
  t.is(outcome, 'closed');
  t.true(Date.now() - start < 5000, `closed in ${Date.now() - start} ms`);
  t.true(logs.some((l) => /^detect MQTT: connection to mqtt:.* closed with 1 alert\(s\) unacknowledged/.test(l)), logs.join('\n'));
  t.true(logs.includes(`alert ${alerts[0].violationId} (in-alarm) to MQTT defender/alerts/thing-x not acknowledged, given up at close`), logs.join('\n'));
});

test('shipped mosquitto, mutual TLS: the alert publisher connects with its own certificate, the operator reads every alert, a thing neither reads nor forges them', async (t) => {
  const p = await makeFleetPki(['thing-a', 'defender-operator', 'defender-detect']);
  const m = await startFleetMosquitto(p);
  t.teardown(() => m.stop());
  const logs: string[] = [];
  const svc = await startService({ broker: m.url, brokerTls: p.client('defender-service'), minPeriod: 0, log: (l) => logs.push(l) });
  t.teardown(() => svc.close());
  const behaviors = [{ name: 'No-connections', metric: 'aws:num-established-tcp-connections', criteria: { comparisonOperator: 'less-than', value: { count: 1 } } }];
  const detect = await attachDetect(svc, { store: openSqlite(':memory:'), profiles: [{ securityProfileName: 'tls', behaviors }], profileRefreshMs: 0, log: (l) => logs.push(l), alertTls: p.client('defender-detect') });
  t.teardown(() => detect.close());
  const alerts: AlertMessage[] = [];
  detect.on('alert', (a) => alerts.push(a));

  const listen = async (name: string) => {
    const c = await mqtt.connectAsync(m.url, { clientId: name, reconnectPeriod: 0, ...p.tls(name) }, false);
    c.on('error', () => {});
    t.teardown(() => c.endAsync(true));
    const got: { topic: string; body: any }[] = [];
    c.on('message', (topic, payload) => got.push({ topic, body: JSON.parse(payload.toString()) }));
    await c.subscribeAsync('defender/alerts/#', { qos: 1 }).catch(() => undefined); // mosquitto may refuse it
    return { c, got };
  };
  const ops = await listen('defender-operator');
  const thing = await listen('thing-a');
  await thing.c.publishAsync('defender/alerts/thing-a', JSON.stringify({ thingName: 'thing-a', violationEventType: 'alarm-cleared' }), { qos: 1 });

  const dev = await device(svc.url, 'thing-a', 'json', p.tls('thing-a'));
  t.teardown(() => dev.close());
  t.is((await dev.send(shortDoc(1))).status, 'accepted');
  await until(() => ops.got.length > 0, 10_000, () => logs.join('\n') + m.log());
  t.like(alerts[0], { thingName: 'thing-a', violationEventType: 'in-alarm' });
  t.deepEqual(ops.got, [{ topic: 'defender/alerts/thing-a', body: alerts[0] }], "the service's alert, and not the forged one");
  t.deepEqual(thing.got, [], 'the thing reads no alert, not even its own');
});
