// End to end through a broker failure: the built tinymqtt + defender on a simulated board, reporting every second
// to the local service attached to mosquitto; mosquitto is killed and started again on the same port. Reports
// resume after the reconnect, every report id is new and larger than the one before, nothing throws.
import { connect, createServer as createNetServer, type Server, type Socket } from 'node:net';
import test from 'ava';
import * as cborg from 'cborg';
import mqtt from 'mqtt';
import { board } from '../../sim/board.ts';
import { startService } from '../../service/service.ts';
import { startMosquitto } from '../helpers/mosquitto.ts';
import { freePort } from '../helpers/net.ts';
import { until } from '../helpers/until.ts';

test('mosquitto killed and restarted during a run: reports resume, ids only increase, no exception', async (t) => {
  const port = await freePort();
  let m = await startMosquitto({ port });
  const svc = await startService({ broker: `mqtt://127.0.0.1:${port}`, minPeriod: 0.5 });
  const crashes: unknown[] = [];
  const onCrash = (e: unknown) => crashes.push(e);
  process.on('uncaughtException', onCrash);
  const b = board();
  const d = b.require('defender');
  const c = b.require('tinymqtt').create('127.0.0.1', { port, client_id: 'restart-1', transport: d.track(b.require('net')), reconnect_min: 0.2, reconnect_max: 1 });
  const published: number[] = [];
  const accepted: number[] = [];
  const other: string[] = [];
  let downs = 0;
  c.on('disconnected', () => downs++);
  c.on('error', () => {});
  c.once('connected', () => {
    d.start({
      mqtt: c,
      thingName: 'restart-1',
      period: 1,
      minPeriod: 1,
      callback: (ev: any) => (ev.type === 1 ? accepted.push(ev.reportId) : other.push(`${ev.type} ${ev.code} ${ev.message}`)),
    });
  });
  const pub = c.publish;
  c.publish = (topic: string, msg: any, qos: any, cb: any) => {
    if (/defender\/metrics\/cbor$/.test(topic)) published.push(Date.now());
    return pub(topic, msg, qos, cb);
  };
  const log = () => `accepted ${accepted.join(',')}; other ${other.join(' | ')}; downs ${downs}`;
  try {
    c.connect();
    await until(() => accepted.length >= 3, 10000, log);
    await m.stop();
    await until(() => downs >= 1, 5000, log);
    const before = accepted.length;
    await new Promise((r) => setTimeout(r, 2500));
    m = await startMosquitto({ port });
    await until(() => accepted.length >= before + 3, 20000, log);
    const ids = svc.reports('restart-1').map((r) => r.reportId!);
    t.true(ids.length >= 6);
    for (let i = 1; i < ids.length; i++) t.true(ids[i] > ids[i - 1], `ids increase: ${ids.join(',')}`);
    t.true(svc.reports('restart-1').every((r) => r.verdict === 'ACCEPTED'), JSON.stringify(svc.reports('restart-1').filter((r) => r.verdict !== 'ACCEPTED')));
    for (let i = 1; i < accepted.length; i++) t.true(accepted[i] > accepted[i - 1]);
    // no burst after the reconnect: reports still at least ~1 s apart
    for (let i = 1; i < published.length; i++) t.true(published[i] - published[i - 1] > 500, `publish gaps: ${published.map((p, j) => (j ? p - published[j - 1] : 0)).join(',')}`);
    t.deepEqual(crashes, []);
  } finally {
    process.off('uncaughtException', onCrash);
    d.stop();
    b.stop();
    c.disconnect();
    await svc.close();
    await m.stop();
  }
});

// Issue 9, "Done when": mosquitto killed and restarted 20 times while the agent reports every second. The device
// reaches mosquitto through a proxy that the test holds shut after each restart until an observer (the npm mqtt
// client, QoS 1) is subscribed again, so "received by the observer" is what mosquitto took in. No report that tinymqtt
// handed to the broker and got acknowledged may be missing there, and report ids strictly increase.
test('mosquitto killed and restarted 20 times: no acknowledged report lost, report ids strictly increasing', async (t) => {
  t.timeout(420_000);
  const RESTARTS = 20;
  const mqttPort = await freePort();
  let m = await startMosquitto({ port: mqttPort });
  let open = true;
  const links = new Set<Socket>();
  const proxy: Server = createNetServer((dev) => {
    links.add(dev);
    dev.on('error', () => {});
    if (!open) return void dev.destroy();
    const up = connect(mqttPort, '127.0.0.1');
    links.add(up);
    up.on('error', () => dev.destroy());
    up.on('close', () => dev.destroy());
    dev.on('close', () => up.destroy());
    dev.pipe(up).pipe(dev);
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  const proxyPort = (proxy.address() as any).port;
  const svc = await startService({ broker: `mqtt://127.0.0.1:${mqttPort}`, minPeriod: 0.5 });
  const received = new Set<number>();
  let subscribed = false;
  const observer = mqtt.connect(`mqtt://127.0.0.1:${mqttPort}`, { clientId: 'observer', reconnectPeriod: 100 });
  observer.on('error', () => {});
  observer.on('close', () => (subscribed = false));
  observer.on('connect', () => observer.subscribe('$aws/things/+/defender/metrics/cbor', { qos: 1 }, (err) => (subscribed = !err)));
  observer.on('message', (_topic, payload) => received.add(cborg.decode(payload, { useMaps: false }).hed.rid));

  const b = board();
  const d = b.require('defender');
  const c = b.require('tinymqtt').create('127.0.0.1', { port: proxyPort, client_id: 'kill-1', transport: d.track(b.require('net')), reconnect_min: 0.2, reconnect_max: 1 });
  const published: number[] = [];
  const acknowledged: number[] = [];
  let answered = 0;
  c.on('error', () => {});
  const pub = c.publish;
  c.publish = (topic: string, msg: any, qos: any, cb: any) => {
    if (!/defender\/metrics\/cbor$/.test(topic)) return pub(topic, msg, qos, cb);
    const id = cborg.decode(Uint8Array.from(msg), { useMaps: false }).hed.rid;
    published.push(id);
    return pub(topic, msg, qos, (err: any) => {
      if (!err) acknowledged.push(id);
      cb(err);
    });
  };
  const until2 = (f: () => boolean, ms: number) => until(f, ms, () => `published ${published.length}, acknowledged ${acknowledged.length}, received ${received.size}`);
  try {
    await until2(() => subscribed, 5000);
    c.connect();
    c.once('connected', () => d.start({ mqtt: c, thingName: 'kill-1', period: 1, minPeriod: 1, callback: (ev: any) => ev.type === 1 && answered++ }));
    for (let i = 0; i < RESTARTS; i++) {
      const before = acknowledged.length;
      await until2(() => acknowledged.length >= before + 2, 30000);
      open = false;
      m.process.kill('SIGKILL');
      await m.stop();
      for (const s of links) s.destroy();
      links.clear();
      m = await startMosquitto({ port: mqttPort });
      await until2(() => subscribed, 10000);
      open = true;
    }
    const before = acknowledged.length;
    await until2(() => acknowledged.length >= before + 2, 30000);
    await new Promise((r) => setTimeout(r, 500));
    const lost = acknowledged.filter((id) => !received.has(id));
    t.log(`${RESTARTS} restarts: published ${published.length}, acknowledged ${acknowledged.length}, received by the broker's subscriber ${received.size}, answered ${answered}, lost ${lost.length}`);
    t.deepEqual(lost, []);
    for (let i = 1; i < published.length; i++) t.true(published[i] > published[i - 1], `ids: ${published.join(',')}`);
  } finally {
    d.stop();
    b.stop();
    c.disconnect();
    observer.end(true);
    await svc.close();
    proxy.close();
    for (const s of links) s.destroy();
    await m.stop();
  }
});
