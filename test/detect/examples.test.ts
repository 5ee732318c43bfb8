// AWS's documented behaviour examples (developer guide "Device-side metrics" and "Custom metrics"), each raising
// and clearing a violation exactly as its consecutive-datapoint rule says, over the real service with reports from
// the built device modules (tinymqtt + defender on a simulated board). Thresholds and windows are the examples'
// own where a test can wait for them; a durationSeconds is shortened where the example's 300 s cannot be waited.
import test from 'ava';
import mqtt from 'mqtt';
import { freePort } from '../helpers/net.ts';
import { until } from '../helpers/until.ts';
import { echoServer, harness, type Device, type Harness } from './helpers.ts';
import type { AlertMessage } from '../../service/detect/detect.ts';

async function setup(t: any, behaviors: Record<string, unknown>[], extra = {}): Promise<Harness> {
  const h = await harness([{ securityProfileName: 'examples', behaviors }], extra);
  t.teardown(() => h.close());
  return h;
}

async function echo(t: any) {
  const e = await echoServer();
  t.teardown(() => e.close());
  return e;
}

/** Opens a tracked connection and waits until it is established. */
function open(dev: Device, port: number, host = '127.0.0.1'): Promise<any> {
  return new Promise((resolve, reject) => {
    const s = dev.net.connect({ host, port }, () => resolve(s));
    s.on('error', reject);
  });
}

function shut(s: any): Promise<void> {
  return new Promise((resolve) => {
    s.on('close', () => resolve());
    s.destroy();
  });
}

/** The alerts of a report, as [type, metricValue]. */
const seen = (alerts: AlertMessage[]) => alerts.map((a) => [a.violationEventType, a.metricValue]);

test('connection count over a threshold (less-than-equals, 2 datapoints to alarm, 2 to clear)', async (t) => {
  const h = await setup(t, [
    {
      name: 'TCP Connection Count',
      metric: 'aws:num-established-tcp-connections',
      criteria: { comparisonOperator: 'less-than-equals', value: { count: 1 }, consecutiveDatapointsToAlarm: 2, consecutiveDatapointsToClear: 2 },
      suppressAlerts: false,
    },
  ]);
  const e = await echo(t);
  const dev = await h.device('conn-count');
  const a = await open(dev, e.port);
  t.deepEqual(seen(await dev.report()), [], '1 connection: normal');
  const more = [await open(dev, e.port), await open(dev, e.port)];
  t.deepEqual(seen(await dev.report()), [], '3 connections: the first violating datapoint does not alarm');
  const raised = await dev.report();
  t.deepEqual(seen(raised), [['in-alarm', { count: 3 }]], 'the second one does');
  const [active] = await h.detect.store.violations();
  t.like(active, { id: raised[0].violationId, thing: 'conn-count', profile: 'examples', behavior: 'TCP Connection Count', metric: 'aws:num-established-tcp-connections', endedAt: null, lastValue: 3 });
  t.deepEqual(seen(await dev.report()), [], 'still violating: no second alarm');
  for (const s of more) await shut(s);
  t.deepEqual(seen(await dev.report()), [], '1 connection again: the first normal datapoint does not clear');
  await open(dev, e.port).then((s) => ((more[0] = s), undefined));
  await open(dev, e.port).then((s) => ((more[1] = s), undefined));
  t.deepEqual(seen(await dev.report()), [], 'violating again: the clear count starts over');
  for (const s of more) await shut(s);
  t.deepEqual(seen(await dev.report()), []);
  const cleared = await dev.report();
  t.deepEqual(seen(cleared), [['alarm-cleared', { count: 1 }]], 'the second normal datapoint in a row clears');
  t.is(cleared[0].violationId, raised[0].violationId);
  t.deepEqual(await h.detect.store.violations(), [], 'none active');
  const [past] = await h.detect.store.violations({ all: true });
  t.like(past, { id: raised[0].violationId, lastValue: 1, endedAt: cleared[0].violationEventTime, startedAt: raised[0].violationEventTime });
  await shut(a);
});

test('bytes out over a window (durationSeconds sums the reports inside it)', async (t) => {
  // AWS's example: less-than-equals 4096 over 300 s; the window here is 6 s so that a test can see it pass
  const h = await setup(t, [
    { name: 'TCP outbound traffic', metric: 'aws:all-bytes-out', criteria: { comparisonOperator: 'less-than-equals', value: { count: 4096 }, durationSeconds: 6, consecutiveDatapointsToAlarm: 1, consecutiveDatapointsToClear: 1 } },
  ]);
  t.true(h.logs.some((l) => /durationSeconds: 6 is not one AWS accepts/.test(l)), 'a duration AWS would refuse is kept with a warning');
  const e = await echo(t);
  const dev = await h.device('bytes-out', 'json');
  const s = await open(dev, e.port);
  const send = (n: number) => new Promise<void>((r) => s.write('x'.repeat(n), () => r()));
  await send(3000);
  const r1 = Date.now();
  t.deepEqual(seen(await dev.report()), [], '3000 bytes in the window');
  await send(3000);
  const raised = await dev.report();
  t.true(Date.now() - r1 < 6000, 'both reports inside the window (else the test proves nothing)');
  t.deepEqual(seen(raised), [['in-alarm', { count: 6000 }]], '3000 + 3000 in the window: over 4096');
  await new Promise((r) => setTimeout(r, 6100));
  const cleared = await dev.report();
  t.deepEqual(seen(cleared), [['alarm-cleared', { count: 0 }]], 'the window has passed');
  await shut(s);
});

test('destination outside a CIDR set (in-cidr-set)', async (t) => {
  const h = await setup(t, [{ name: 'Allowed destinations', metric: 'aws:destination-ip-addresses', criteria: { comparisonOperator: 'in-cidr-set', value: { cidrs: ['127.0.0.1/32', '10.0.0.0/8'] } } }]);
  const e = await echo(t);
  const dev = await h.device('cidr');
  const ok = await open(dev, e.port, '127.0.0.1');
  t.deepEqual(seen(await dev.report()), [], '127.0.0.1 is in the set');
  const bad = await open(dev, e.port, '127.0.0.2');
  const raised = await dev.report();
  t.is(raised.length, 1);
  t.is(raised[0].violationEventType, 'in-alarm');
  t.deepEqual([...(raised[0].metricValue.cidrs as string[])].sort(), ['127.0.0.1', '127.0.0.2']);
  await shut(bad);
  t.deepEqual(seen(await dev.report()), [['alarm-cleared', { cidrs: ['127.0.0.1'] }]]);
  await shut(ok);
});

test('destination inside a denied CIDR set (not-in-cidr-set)', async (t) => {
  const h = await setup(t, [{ name: 'Denied destinations', metric: 'aws:destination-ip-addresses', criteria: { comparisonOperator: 'not-in-cidr-set', value: { cidrs: ['127.0.0.2/32'] } } }]);
  const e = await echo(t);
  const dev = await h.device('cidr-deny');
  const bad = await open(dev, e.port, '127.0.0.2');
  t.deepEqual(seen(await dev.report()), [['in-alarm', { cidrs: ['127.0.0.2'] }]]);
  await shut(bad);
  t.deepEqual(seen(await dev.report()), [['alarm-cleared', { cidrs: [] }]]);
});

test('listening TCP port outside a port set (in-port-set), and a UDP port inside a denied one (not-in-port-set)', async (t) => {
  const [allowed, other, udpDenied] = [await freePort(), await freePort(), await freePort()];
  const h = await setup(t, [
    { name: 'Listening TCP Ports', metric: 'aws:listening-tcp-ports', criteria: { comparisonOperator: 'in-port-set', value: { ports: [443, allowed] } } },
    { name: 'Listening UDP Ports', metric: 'aws:listening-udp-ports', criteria: { comparisonOperator: 'not-in-port-set', value: { ports: [udpDenied] } } },
  ]);
  const dev = await h.device('ports');
  const listen = (port: number) =>
    new Promise<any>((resolve) => {
      const srv = dev.net.createServer(() => {});
      srv.listen(port, () => resolve(srv));
    });
  const a = await listen(allowed);
  t.deepEqual(seen(await dev.report()), [], `${allowed} is allowed`);
  const b = await listen(other);
  t.deepEqual(seen(await dev.report()), [['in-alarm', { ports: [allowed, other] }]]);
  await new Promise((r) => b.close(r));
  t.deepEqual(seen(await dev.report()), [['alarm-cleared', { ports: [allowed] }]]);
  const u = dev.dgram.createSocket('udp4');
  await new Promise<void>((r) => u.bind(udpDenied, () => r()));
  const raised = await dev.report();
  t.deepEqual(seen(raised), [['in-alarm', { ports: [udpDenied] }]]);
  t.is(raised[0].behavior.name, 'Listening UDP Ports');
  await new Promise((r) => u.close(r));
  t.deepEqual(seen(await dev.report()), [['alarm-cleared', { ports: [] }]]);
  await new Promise((r) => a.close(r));
});

test('a custom metric (AWS\'s batteryPercentage: greater-than 75, 5 datapoints to alarm)', async (t) => {
  const h = await setup(t, [
    { name: 'great-than-75', metric: 'batteryPercentage', criteria: { comparisonOperator: 'greater-than', value: { number: 75 }, consecutiveDatapointsToAlarm: 5, consecutiveDatapointsToClear: 1 } },
    { name: 'known-apps', metric: 'apps', criteria: { comparisonOperator: 'in-set', value: { strings: ['ota', 'sensor'] } } },
  ]);
  const dev = await h.device('battery');
  const battery = (n: number) => (dev.custom = { batteryPercentage: { number: n }, apps: { string_list: ['sensor'] } });
  battery(80);
  t.deepEqual(seen(await dev.report()), []);
  for (let i = 1; i <= 4; i++) {
    battery(50);
    t.deepEqual(seen(await dev.report()), [], `violating datapoint ${i} of 5`);
  }
  battery(76);
  t.deepEqual(seen(await dev.report()), [], 'a normal one resets the count');
  for (let i = 1; i <= 4; i++) {
    battery(40);
    t.deepEqual(seen(await dev.report()), [], `violating datapoint ${i} of 5 again`);
  }
  battery(30);
  t.deepEqual(seen(await dev.report()), [['in-alarm', { number: 30 }]], 'the 5th in a row alarms');
  battery(90);
  t.deepEqual(seen(await dev.report()), [['alarm-cleared', { number: 90 }]], '1 normal datapoint clears');
  dev.custom = { batteryPercentage: { number: 90 }, apps: { string_list: ['sensor', 'miner'] } };
  t.deepEqual(seen(await dev.report()), [['in-alarm', { strings: ['sensor', 'miner'] }]], 'a string-list custom metric with in-set');
  dev.custom = { batteryPercentage: { number: 90 } };
  t.deepEqual(seen(await dev.report()), [], 'a report without the metric is no datapoint');
  dev.custom = { batteryPercentage: { number: 90 }, apps: { string_list: [] } };
  t.deepEqual(seen(await dev.report()), [['alarm-cleared', { strings: [] }]]);
});

test('a statistical threshold: a thing above the fleet\'s p50 of connection counts', async (t) => {
  const h = await setup(t, [
    { name: 'TCP Connection Count', metric: 'aws:num-established-tcp-connections', criteria: { comparisonOperator: 'less-than-equals', statisticalThreshold: { statistic: 'p50' }, durationSeconds: 900, consecutiveDatapointsToAlarm: 1, consecutiveDatapointsToClear: 1 } },
  ]);
  const e = await echo(t);
  const fleet = [await h.device('stat-a'), await h.device('stat-b'), await h.device('stat-c')];
  const conns = [await open(fleet[0], e.port), await open(fleet[1], e.port), await open(fleet[2], e.port)];
  t.deepEqual(seen(await fleet[0].report()), [], 'no fleet data yet: no datapoint');
  t.deepEqual(seen(await fleet[1].report()), [], 'p50 of [1] is 1: 1 is normal');
  t.deepEqual(seen(await fleet[2].report()), []);
  const more = [await open(fleet[2], e.port), await open(fleet[2], e.port), await open(fleet[2], e.port)];
  t.deepEqual(seen(await fleet[2].report()), [['in-alarm', { count: 4 }]], 'p50 of [1, 1, 1] is 1: 4 is over it');
  t.deepEqual(seen(await fleet[0].report()), [], 'p50 of [1, 1, 4] is 1: the others stay normal');
  for (const s of more) await shut(s);
  t.deepEqual(seen(await fleet[2].report()), [['alarm-cleared', { count: 1 }]]);
  for (const s of conns) await shut(s);
});

test('alerts go to the MQTT topic (AWS\'s violation event as JSON), to the log, and not for suppressAlerts', async (t) => {
  const h = await setup(t, [
    { name: 'max-conns', metric: 'aws:num-established-tcp-connections', criteria: { comparisonOperator: 'less-than', value: { count: 1 } } },
    { name: 'quiet', metric: 'aws:num-established-tcp-connections', criteria: { comparisonOperator: 'less-than', value: { count: 1 } }, suppressAlerts: true },
  ]);
  const sub = await mqtt.connectAsync(h.svc.url, { reconnectPeriod: 0 });
  t.teardown(() => sub.endAsync());
  const got: { topic: string; body: any }[] = [];
  sub.on('message', (topic, payload) => got.push({ topic, body: JSON.parse(payload.toString()) }));
  await sub.subscribeAsync('defender/alerts/#', { qos: 1 });
  const e = await echo(t);
  const dev = await h.device('alerted');
  const s = await open(dev, e.port);
  const [raised] = await dev.report();
  await until(() => got.length === 1, 5000);
  t.is(got[0].topic, 'defender/alerts/alerted');
  t.deepEqual(got[0].body, {
    violationId: raised.violationId,
    thingName: 'alerted',
    securityProfileName: 'examples',
    behavior: { name: 'max-conns', metric: 'aws:num-established-tcp-connections', criteria: { comparisonOperator: 'less-than', value: { count: 1 } } },
    violationEventType: 'in-alarm',
    metricValue: { count: 1 },
    violationEventTime: raised.violationEventTime,
    violationStartTime: raised.violationEventTime,
    reportId: raised.reportId,
  });
  t.regex(h.logs.find((l) => l.includes('VIOLATION'))!, /^\[alerted\] VIOLATION examples\/max-conns \(aws:num-established-tcp-connections\): \{"count":1\}/);
  const active = await h.detect.store.violations({ thing: 'alerted' });
  t.deepEqual(active.map((v) => v.behavior).sort(), ['max-conns', 'quiet'], 'a suppressed behaviour still records its violation');
  await shut(s);
  await dev.report();
  await until(() => got.length === 2, 5000);
  t.is(got[1].body.violationEventType, 'alarm-cleared');
  t.is(got.filter((g) => g.body.behavior.name === 'quiet').length, 0);
});

test('a restart of the service continues the counting where it stopped (the state is in the store)', async (t) => {
  const h = await setup(t, [{ name: 'few', metric: 'aws:num-established-tcp-connections', criteria: { comparisonOperator: 'less-than', value: { count: 1 }, consecutiveDatapointsToAlarm: 3, consecutiveDatapointsToClear: 2 } }]);
  const e = await echo(t);
  const dev = await h.device('restarted');
  const s = await open(dev, e.port);
  t.deepEqual(seen(await dev.report()), []);
  t.deepEqual(seen(await dev.report()), []);
  await h.restart();
  t.deepEqual(seen(await dev.report()), [['in-alarm', { count: 1 }]], 'the 3rd violating datapoint, after the restart');
  await shut(s);
  t.deepEqual(seen(await dev.report()), []);
  await h.restart();
  t.deepEqual(seen(await dev.report()), [['alarm-cleared', { count: 0 }]], 'the 2nd normal one, after another restart');
  t.is((await h.detect.store.violations({ all: true })).length, 1);
});
