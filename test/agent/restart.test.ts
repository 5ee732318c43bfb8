// End to end through a broker failure: the built tinymqtt + defender on a simulated board, reporting every second
// to the local service attached to mosquitto; mosquitto is killed and started again on the same port. Reports
// resume after the reconnect, every report id is new and larger than the one before, nothing throws.
import test from 'ava';
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
