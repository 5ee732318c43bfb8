// Each thing speaks only for itself, as an AWS IoT policy makes it: tried as an attacker would (client A against
// thing B), on the embedded aedes (client ids on plain MQTT, certificates on mutual TLS) and on a real mosquitto
// started on the shipped configuration (service/broker/mosquitto/).
import test, { type ExecutionContext } from 'ava';
import mqtt, { type MqttClient, type IClientOptions } from 'mqtt';
import { startService, type Service, type VerdictEvent } from '../../service/service.ts';
import { device, shortDoc, encode, type Device } from './helpers.ts';
import { makeFleetPki, startFleetMosquitto, type FleetPki } from './fleet.ts';

const B = '$aws/things/thing-b/defender/metrics/cbor';

interface Setup {
  svc: Service;
  /** aedes refuses a subscription it would not deliver (SUBACK 0x80); mosquitto 2.0 grants it and checks the ACL
   * on each message instead. */
  refusesSubscriptions: boolean;
  /** Client options for `name` (its certificate, under TLS). */
  as(name: string): IClientOptions;
}

let pki: Promise<FleetPki> | undefined;
const fleetPki = () => (pki ??= makeFleetPki(['thing-a', 'thing-b']));

const BROKERS: Record<string, (t: ExecutionContext) => Promise<Setup>> = {
  'aedes, plain MQTT, client id as identity': async (t) => {
    const svc = await startService({ port: 0, minPeriod: 0, access: 'thing' });
    t.teardown(() => svc.close());
    return { svc, refusesSubscriptions: true, as: () => ({}) };
  },
  'aedes, mutual TLS': async (t) => {
    const p = await fleetPki();
    const svc = await startService({ port: 0, minPeriod: 0, tls: { caFile: p.caFile, certFile: p.certFile, keyFile: p.keyFile } });
    t.teardown(() => svc.close());
    t.regex(svc.url, /^mqtts:\/\/127\.0\.0\.1:\d+$/);
    return { svc, refusesSubscriptions: true, as: (name) => p.tls(name) };
  },
  'mosquitto, shipped configuration': async (t) => {
    const p = await fleetPki();
    const m = await startFleetMosquitto(p);
    t.teardown(() => m.stop());
    const svc = await startService({ broker: m.url, brokerTls: p.client('defender-service'), minPeriod: 0 });
    t.teardown(() => svc.close());
    return { svc, refusesSubscriptions: false, as: (name) => p.tls(name) };
  },
};

async function dev(t: ExecutionContext, s: Setup, thing: string, opts: IClientOptions = {}): Promise<Device> {
  const d = await device(s.svc.url, thing, 'cbor', { ...s.as(thing), ...opts });
  t.teardown(() => d.close());
  return d;
}

async function client(t: ExecutionContext, s: Setup, name: string, opts: IClientOptions = {}): Promise<MqttClient> {
  const c = await mqtt.connectAsync(s.svc.url, { clientId: name, reconnectPeriod: 0, ...s.as(name), ...opts }, false);
  t.teardown(() => c.endAsync(true));
  return c;
}

/** Publishes, and resolves once the broker acknowledged it or closed the connection for it (aedes does). */
async function tryPublish(c: MqttClient, topic: string, payload: Buffer): Promise<string> {
  if (!c.connected) return 'not connected';
  return Promise.race([
    c.publishAsync(topic, payload, { qos: 1 }).then(() => 'acknowledged', (err: Error) => `error: ${err.message}`),
    new Promise<string>((r) => c.once('close', () => r('connection closed'))),
  ]);
}

function verdicts(svc: Service): VerdictEvent[] {
  const seen: VerdictEvent[] = [];
  svc.on('verdict', (v) => seen.push(v));
  return seen;
}

for (const [broker, setup] of Object.entries(BROKERS)) {
  test(`${broker}: client A publishing a report for thing B is not heard`, async (t) => {
    const s = await setup(t);
    const seen = verdicts(s.svc);
    const b = await dev(t, s, 'thing-b');
    const a = await client(t, s, 'thing-a');
    // on aedes the connection is closed for it, on mosquitto the message dropped: either way, not judged
    t.log(await tryPublish(a, B, encode(shortDoc(2n ** 63n - 1n), 'cbor')));
    const answer = await b.send(shortDoc(1));
    t.is(answer.status, 'accepted', 'B reports on: the forged id 2^63-1 was never its last');
    t.deepEqual(
      seen.map((v) => `${v.thing} ${v.reportId}`),
      ['thing-b 1'],
    );
  });

  test(`${broker}: client A may not subscribe to B's answers nor to $aws/#, and receives none of B's messages`, async (t) => {
    const s = await setup(t);
    const a = await dev(t, s, 'thing-a');
    const got: string[] = [];
    a.client.on('message', (topic) => got.push(topic));
    const granted = await a.client.subscribeAsync([`${B}/accepted`, `${B}/rejected`, '$aws/#', '$aws/things/+/defender/metrics/cbor'], { qos: 1 }).then(
      (g) => g.map((x) => x.qos),
      (err) => err.packet.granted as number[], // mqtt.js: an error when every one is refused
    );
    t.deepEqual(granted, s.refusesSubscriptions ? [128, 128, 128, 128] : [1, 1, 1, 1]);
    const b = await dev(t, s, 'thing-b');
    t.is((await b.send(shortDoc(1))).status, 'accepted');
    t.is((await a.send(shortDoc(1))).status, 'accepted', 'A still gets its own answers');
    await new Promise((r) => setTimeout(r, 200));
    t.deepEqual(got, ['$aws/things/thing-a/defender/metrics/cbor/accepted']);
  });

  test(`${broker}: nobody but the service publishes answers; a forged REJECTED never reaches B`, async (t) => {
    const s = await setup(t);
    const b = await dev(t, s, 'thing-b');
    const got: string[] = [];
    b.client.on('message', (topic, payload) => got.push(`${topic.split('/').pop()} ${payload.length}`));
    const forged = encode({ thingName: 'thing-b', reportId: 1, status: 'REJECTED', statusDetails: { ErrorCode: 'InvalidPayload', ErrorMessage: 'forged' }, timestamp: 1 }, 'cbor');
    const a = await client(t, s, 'thing-a');
    t.log('A:', await tryPublish(a, `${B}/rejected`, forged));
    const answer = await b.send(shortDoc(1));
    // B may not answer itself either
    t.log('B:', await tryPublish(b.client, `${B}/rejected`, forged));
    t.is(answer.status, 'accepted');
    await new Promise((r) => setTimeout(r, 200));
    t.deepEqual(got.map((x) => x.split(' ')[0]), ['accepted'], 'one answer, the real one');
  });

  test(`${broker}: client A connecting with B's client id does not disconnect B`, async (t) => {
    const s = await setup(t);
    const b = await dev(t, s, 'thing-b');
    let closed = 0;
    b.client.on('close', () => closed++);
    // A's own certificate (under TLS), B's client id
    const attempt = await mqtt.connectAsync(s.svc.url, { clientId: 'thing-b', reconnectPeriod: 0, ...s.as('thing-a') }, false).then(
      (c) => (t.teardown(() => c.endAsync(true)), 'connected'),
      (err: Error) => `refused: ${err.message}`,
    );
    t.log(attempt);
    t.is((await b.send(shortDoc(1))).status, 'accepted', 'B still connected and answered');
    t.is(closed, 0);
  });
}

test('aedes, mutual TLS: a client without a certificate of the fleet CA, or whose client id is not its CN, is refused', async (t) => {
  const s = await BROKERS['aedes, mutual TLS'](t);
  const p = await fleetPki();
  await t.throwsAsync(mqtt.connectAsync(s.svc.url, { clientId: 'thing-a', reconnectPeriod: 0, ca: p.tls('thing-a').ca }, false));
  await t.throwsAsync(mqtt.connectAsync(s.svc.url, { clientId: 'thing-x', reconnectPeriod: 0, ...p.tls('thing-a') }, false), { message: /Not authorized/i });
  const a = await dev(t, s, 'thing-a');
  t.is((await a.send(shortDoc(1))).status, 'accepted');
  // the same certificate again replaces the first connection, as on AWS IoT (the device after a half-open drop)
  const again = await dev(t, s, 'thing-a');
  t.is((await again.send(shortDoc(2))).status, 'accepted');
});

test('aedes, plain: an open broker is refused on a non-loopback address', async (t) => {
  await t.throwsAsync(startService({ host: '0.0.0.0', port: 0 }), { message: /open broker on 0\.0\.0\.0/ });
});

test('aedes, open (development on loopback): any client may report, but answers still come from the service only', async (t) => {
  const svc = await startService({ port: 0, minPeriod: 0 });
  t.teardown(() => svc.close());
  const b = await device(svc.url, 'thing-b', 'cbor');
  t.teardown(() => b.close());
  const got: string[] = [];
  b.client.on('message', (topic) => got.push(topic.split('/').pop()!));
  const a = await mqtt.connectAsync(svc.url, { clientId: 'anyone', reconnectPeriod: 0 }, false);
  t.teardown(() => a.endAsync(true));
  t.is(await tryPublish(a, `${B}/rejected`, encode({ status: 'REJECTED' }, 'cbor')), 'connection closed');
  t.is((await b.send(shortDoc(1))).status, 'accepted');
  await new Promise((r) => setTimeout(r, 200));
  t.deepEqual(got, ['accepted']);
});
