// AWS's cloud-side metrics, measured by the embedded broker: behaviours on them raise and clear violations by the
// consecutive-datapoint rules, over the real service with real MQTT clients. AWS's documented examples, with their
// 300 s windows shortened to 1 s and the broker's interval to 0.25 s so that a test can see them pass.
import test, { type ExecutionContext } from 'ava';
import { connect as tcp } from 'node:net';
import mqtt, { MqttClient, type IClientOptions } from 'mqtt';
import { until } from '../helpers/until.ts';
import { harness, type Harness } from './helpers.ts';
import { createDetect, type AlertMessage } from '../../service/detect/detect.ts';
import { openSqlite } from '../../service/store/sqlite.ts';
import type { ServiceOptions } from '../../service/service.ts';
import type { CloudRow } from '../../service/store/store.ts';

const INTERVAL = 0.25;

async function setup(t: ExecutionContext, things: string[], behaviors: Record<string, unknown>[], service: ServiceOptions = {}): Promise<Harness> {
  const h = await harness([{ securityProfileName: 'cloud', things, behaviors }], { cloudIntervalSeconds: INTERVAL }, undefined, service);
  t.teardown(() => h.close());
  return h;
}

/** An MQTT client of the service's broker, from `localAddress` (127.0.0.1 by default). */
async function client(t: ExecutionContext, h: Harness, clientId: string, localAddress = '127.0.0.1'): Promise<MqttClient> {
  const c = new MqttClient(() => tcp({ host: '127.0.0.1', port: h.svc.port, localAddress }), { clientId, reconnectPeriod: 0, protocolVersion: 4, protocolId: 'MQTT' } as IClientOptions);
  c.on('error', () => {});
  t.teardown(() => c.endAsync(true));
  await new Promise<void>((resolve, reject) => {
    c.once('connect', () => resolve());
    c.once('close', () => reject(new Error(`${clientId}: connection closed`)));
  });
  return c;
}

/** The next alert of `thing` after the `seen` first ones, as [type, metricValue]. */
async function next(h: Harness, thing: string, seen: number): Promise<[string, unknown]> {
  await until(() => h.alerts.filter((a) => a.thingName === thing).length > seen, 10_000, () => JSON.stringify(h.alerts));
  const a: AlertMessage = h.alerts.filter((x) => x.thingName === thing)[seen];
  return [a.violationEventType, a.metricValue];
}

/** Waits until a broker interval of `thing` that `pred` picks is stored, and every datapoint so far evaluated. */
async function evaluated(h: Harness, thing: string, pred: (r: CloudRow) => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await h.detect.store.cloudMetrics(thing)).some(pred)) {
    if (Date.now() > deadline) throw new Error(`${thing}: no such broker interval evaluated`);
    await new Promise((r) => setTimeout(r, 20));
  }
  await h.detect.idle();
}

test('authorization failures: a client publishing on another thing\'s topic raises a violation, which clears once the window holds none', async (t) => {
  // AWS's example: less-than 5 over 300 s
  const h = await setup(
    t,
    ['intruder'],
    [{ name: 'Authorization Failures', metric: 'aws:num-authorization-failures', criteria: { comparisonOperator: 'less-than', value: { count: 2 }, durationSeconds: 1 } }],
    { access: 'thing' },
  );
  const c = await client(t, h, 'intruder');
  // refused: a SUBACK of 0x80, the connection stays
  await t.throwsAsync(c.subscribeAsync('$aws/things/victim/defender/metrics/json/accepted', { qos: 1 }), { message: /Subscribe error/ });
  // refused: aedes closes the connection of a client publishing where its policy does not allow
  const closed = new Promise<void>((r) => c.once('close', () => r()));
  c.publish('$aws/things/victim/defender/metrics/json', '{}', { qos: 1 });
  await closed;
  t.deepEqual(await next(h, 'intruder', 0), ['in-alarm', { count: 2 }]);
  const [active] = await h.detect.store.violations();
  t.like(active, { thing: 'intruder', profile: 'cloud', behavior: 'Authorization Failures', metric: 'aws:num-authorization-failures', lastValue: 2, endedAt: null });
  t.is(h.alerts[0].reportId, undefined, 'raised by the broker, not by a report');
  // gone quiet (and disconnected): the 1 s window empties
  t.deepEqual(await next(h, 'intruder', 1), ['alarm-cleared', { count: 0 }]);
  t.deepEqual(await h.detect.store.violations(), []);
  const rows = await h.detect.store.cloudMetrics('intruder');
  t.is(rows.reduce((n, r) => n + (r.metrics['aws:num-authorization-failures'] as number), 0), 2, 'the failures are stored, each once');
  t.is(rows.reduce((n, r) => n + (r.metrics['aws:num-connection-attempts'] as number), 0), 1);
  t.is(rows.reduce((n, r) => n + (r.metrics['aws:num-disconnects'] as number), 0), 1);
});

test('source IP outside the allowed set (not-in-cidr-set): raised by a connection from a denied address, cleared from an allowed one', async (t) => {
  const h = await setup(t, ['roamer'], [{ name: 'Denied source IPs', metric: 'aws:source-ip-address', criteria: { comparisonOperator: 'not-in-cidr-set', value: { cidrs: ['127.0.0.2/32'] } } }]);
  const denied = await client(t, h, 'roamer', '127.0.0.2');
  t.deepEqual(await next(h, 'roamer', 0), ['in-alarm', { cidrs: ['127.0.0.2'] }]);
  await denied.endAsync();
  await client(t, h, 'roamer', '127.0.0.1');
  // the interval of the change saw both addresses; the next only the allowed one
  t.deepEqual(await next(h, 'roamer', 1), ['alarm-cleared', { cidrs: ['127.0.0.1'] }]);
  const [v] = await h.detect.store.violations({ all: true });
  t.like(v, { metric: 'aws:source-ip-address', lastValue: ['127.0.0.1'] });
  t.not(v.endedAt, null);
});

test('message size (less-than-equals, 2 datapoints to clear): a large message raises, two intervals of small ones clear', async (t) => {
  const h = await setup(
    t,
    ['chatty'],
    [{ name: 'Max Message Size', metric: 'aws:message-byte-size', criteria: { comparisonOperator: 'less-than-equals', value: { count: 100 }, consecutiveDatapointsToClear: 2 } }],
  );
  const c = await client(t, h, 'chatty');
  await c.publishAsync('chatty/telemetry', Buffer.alloc(10), { qos: 1 });
  await c.publishAsync('chatty/telemetry', Buffer.alloc(500), { qos: 1 });
  t.deepEqual(await next(h, 'chatty', 0), ['in-alarm', { count: 500 }], 'the largest message of the interval');
  const raisedAt = h.alerts[0].violationEventTime;
  await c.publishAsync('chatty/telemetry', Buffer.alloc(10), { qos: 1 });
  await evaluated(h, 'chatty', (r) => r.at > raisedAt && r.metrics['aws:message-byte-size'] === 10);
  t.is(h.alerts.length, 1, 'one normal datapoint does not clear');
  await c.publishAsync('chatty/telemetry', Buffer.alloc(20), { qos: 1 });
  t.deepEqual(await next(h, 'chatty', 1), ['alarm-cleared', { count: 20 }], 'the second does');
});

test('messages sent over a window (less-than-equals): five messages in a second raise, the window emptying clears', async (t) => {
  // AWS's example: less-than-equals 50 over 300 s
  const h = await setup(t, ['sender'], [{ name: 'Out bound message count', metric: 'aws:num-messages-sent', criteria: { comparisonOperator: 'less-than-equals', value: { count: 3 }, durationSeconds: 1 } }]);
  const c = await client(t, h, 'sender');
  for (let i = 0; i < 5; i++) await c.publishAsync('sender/telemetry', 'x', { qos: 1 });
  // the five may fall into two intervals (4 + 1 raises at 4 and 3 + 2 at 5), so the window's count when it
  // raises is over the limit, and when it clears (still connected, sending nothing) at or under it
  const [raised, over] = await next(h, 'sender', 0);
  t.is(raised, 'in-alarm');
  t.true((over as any).count > 3 && (over as any).count <= 5, JSON.stringify(over));
  const [cleared, under] = await next(h, 'sender', 1);
  t.is(cleared, 'alarm-cleared');
  t.true((under as any).count <= 3, JSON.stringify(under));
  const rows = await h.detect.store.cloudMetrics('sender');
  t.is(rows.reduce((n, r) => n + (r.metrics['aws:num-messages-sent'] as number), 0), 5);
});

test('a client id that is no known thing (never reported, named by no profile) gets no datapoints', async (t) => {
  const h = await setup(t, ['sender'], [{ name: 'Out bound message count', metric: 'aws:num-messages-sent', criteria: { comparisonOperator: 'less-than-equals', value: { count: 0 } } }]);
  const stranger = await client(t, h, 'stranger');
  const sender = await client(t, h, 'sender');
  await stranger.publishAsync('stranger/telemetry', 'x', { qos: 1 });
  await sender.publishAsync('sender/telemetry', 'x', { qos: 1 });
  t.deepEqual(await next(h, 'sender', 0), ['in-alarm', { count: 1 }]);
  const raisedAt = h.alerts[0].violationEventTime;
  await evaluated(h, 'sender', (r) => r.at > raisedAt);
  t.deepEqual(await h.detect.store.cloudMetrics('stranger'), []);
});

test('cloud-side behaviours load with a warning only where the embedded broker is not there to measure them', async (t) => {
  const profile = {
    securityProfileName: 'cloud',
    behaviors: [{ name: 'Authorization Failures', metric: 'aws:num-authorization-failures', criteria: { comparisonOperator: 'less-than', value: { count: 5 }, durationSeconds: 300 } }],
  };
  const warning = 'profile cloud: behaviors[0].metric: aws:num-authorization-failures is cloud-side, measured only by the embedded broker (not by an external one); the behaviour sees no datapoints';
  const h = await harness([profile]);
  t.teardown(() => h.close());
  t.false(h.logs.includes(warning), 'embedded broker: measured, no warning');
  const logs: string[] = [];
  const store = openSqlite(':memory:');
  t.teardown(() => store.close());
  const d = await createDetect({ store, profiles: [profile], profileRefreshMs: 0, log: (l) => logs.push(l) });
  t.teardown(() => d.close());
  t.true(logs.includes(warning), logs.join('\n'));
});
