// The agent in build/defender.js with a mock MQTT client and fake timers: the FreeRTOS Device Defender
// library's own test cases re-expressed, validation, report contents per metrics flag, responses, MQTT
// failure paths, report ids, disconnects, and a 10,000-period soak.
import test from 'ava';
import * as cborg from 'cborg';
import { loadAgent, MockClient, decode, response, base, recorder, memStorage, CODE, EV } from './helpers.ts';
import { mockNet, mockDgram } from '../metrics/helpers.ts';

const THING = 'dev-1';
/** Metrics groups: numbers, as the README documents them. */
const G = { TCP_CONNECTIONS: 0, LISTENING_TCP_PORTS: 1, LISTENING_UDP_PORTS: 2, NETWORK_STATS: 3, CUSTOM_METRICS: 4, ALL_METRICS: 0xffffffff };
const P = 300_000; // default period in ms

/** A started agent on a mock client (extra start options merged in). */
function started(opts: any = {}, load: any = {}) {
  const l = loadAgent(load);
  const mq = new MockClient();
  const rec = recorder();
  const rc = l.d.start({ mqtt: mq, thingName: THING, callback: rec.callback, ...opts });
  return { ...l, mq, rec, rc };
}

// --- the FreeRTOS library's tests -------------------------------------------------------------------------

test('start twice gives ALREADY_STARTED', (t) => {
  const { d, mq, rc } = started();
  t.is(rc, CODE.SUCCESS);
  t.is(d.start({ mqtt: mq, thingName: THING }), CODE.ALREADY_STARTED);
  t.is(CODE.ALREADY_STARTED, 2);
});

test('setPeriod(299) gives PERIOD_TOO_SHORT; setPeriod(301) then getPeriod() is 301', (t) => {
  const { d } = loadAgent();
  t.is(d.getPeriod(), 300);
  t.is(d.setPeriod(299), CODE.PERIOD_TOO_SHORT);
  t.is(d.getPeriod(), 300, 'unchanged on error');
  t.is(d.setPeriod(301), CODE.SUCCESS);
  t.is(d.getPeriod(), 301);
  t.is(d.setPeriod(86401), CODE.PERIOD_TOO_LONG);
  t.is(d.setPeriod(86400), CODE.SUCCESS);
  t.is(d.setPeriod('600' as any), CODE.INVALID_INPUT);
  t.is(d.setPeriod(NaN), CODE.INVALID_INPUT);
  t.is(d.getPeriod(), 86400);
});

test('setPeriod(600) while started succeeds and takes effect at the next iteration', (t) => {
  const { d, mq, clock } = started();
  clock.tick(100_000);
  t.is(d.setPeriod(600), CODE.SUCCESS);
  t.is(d.getPeriod(), 600);
  clock.tick(P - 100_000);
  t.is(mq.pubs.length, 1, 'the iteration under way keeps its period');
  clock.tick(599_999);
  t.is(mq.pubs.length, 1);
  clock.tick(1);
  t.is(mq.pubs.length, 2, 'then every 600 s');
  clock.tick(600_000);
  t.is(mq.pubs.length, 3);
  t.is(clock.countTimers(), 1);
});

test('stop, setMetrics all, start: the next accepted report carries the connection to the endpoint with its address', (t) => {
  const { d, mq, rec, clock } = started();
  const net = d.track(mockNet());
  const s = net.connect({ host: '52.94.1.2', port: 8883 });
  s.emit('connect');
  t.is(d.stop(), CODE.SUCCESS);
  t.is(d.setMetrics(G.TCP_CONNECTIONS, G.ALL_METRICS), CODE.SUCCESS);
  t.is(d.start({ mqtt: mq, thingName: THING, callback: rec.callback }), CODE.SUCCESS);
  clock.tick(P);
  const p = mq.pubs.at(-1)!;
  const r = decode(p, false);
  t.deepEqual(r.met.tc, { ec: { cs: [{ rad: '52.94.1.2:8883' }], t: 1 } });
  mq.deliver(base(THING) + '/accepted', response(THING, r.hed.rid, false));
  t.deepEqual(rec.events.at(-1), { type: EV.METRICS_ACCEPTED, reportId: r.hed.rid, code: 0, message: '' });
});

test('a rejected report reaches the callback as METRICS_REJECTED with ErrorCode and ErrorMessage', (t) => {
  for (const json of [false, true]) {
    const { d, mq, rec, clock } = started({ format: json ? 'json' : 'cbor' });
    clock.tick(P);
    const id = decode(mq.pubs[0], json).hed.rid;
    mq.deliver(base(THING, json) + '/rejected', response(THING, id, json, { code: 'InvalidPayload', message: 'bad "x"' }));
    t.deepEqual(rec.events, [{ type: EV.METRICS_REJECTED, reportId: id, code: 'InvalidPayload', message: 'bad "x"' }]);
  }
});

// --- validation --------------------------------------------------------------------------------------------

test('start validates its input, returns the matching code and changes nothing on error', (t) => {
  const { d, clock } = loadAgent();
  const mq = new MockClient();
  const ok = { mqtt: mq, thingName: THING };
  const bad: [any, number][] = [
    [undefined, CODE.INVALID_INPUT],
    [{ thingName: THING }, CODE.INVALID_INPUT],
    [{ mqtt: {}, thingName: THING }, CODE.INVALID_INPUT],
    [{ ...ok, thingName: '' }, CODE.INVALID_INPUT],
    [{ ...ok, thingName: 'a'.repeat(129) }, CODE.INVALID_INPUT],
    [{ ...ok, thingName: 'a b' }, CODE.INVALID_INPUT],
    [{ ...ok, thingName: 'a/b' }, CODE.INVALID_INPUT],
    [{ ...ok, thingName: 'a+' }, CODE.INVALID_INPUT],
    [{ ...ok, thingName: 'é' }, CODE.INVALID_INPUT],
    [{ ...ok, thingName: 42 }, CODE.INVALID_INPUT],
    [{ ...ok, callback: 'no' }, CODE.INVALID_INPUT],
    [{ ...ok, format: 'xml' }, CODE.INVALID_INPUT],
    [{ ...ok, slots: 0 }, CODE.INVALID_INPUT],
    [{ ...ok, slots: 256 }, CODE.INVALID_INPUT],
    [{ ...ok, bufferSize: 10 }, CODE.INVALID_INPUT],
    [{ ...ok, minPeriod: 0 }, CODE.INVALID_INPUT],
    [{ ...ok, period: 299 }, CODE.PERIOD_TOO_SHORT],
    [{ ...ok, period: 86401 }, CODE.PERIOD_TOO_LONG],
    [{ ...ok, period: 'x' }, CODE.INVALID_INPUT],
    [{ ...ok, period: 4, minPeriod: 5 }, CODE.PERIOD_TOO_SHORT],
  ];
  for (const [info, code] of bad) {
    t.is(d.start(info), code, JSON.stringify(info && { ...info, mqtt: !!info.mqtt }));
  }
  t.is(mq.listenerCount('message'), 0);
  t.is(mq.subs.length, 0);
  t.is(clock.countTimers(), 0);
  t.is(d.getPeriod(), 300);
  t.is(d.stop(), CODE.NOT_STARTED);
  t.is(d.report(), CODE.NOT_STARTED);
  t.is(d.start({ ...ok, thingName: 'Az09:_-'.padEnd(128, 'x') }), CODE.SUCCESS, '128 characters of [a-zA-Z0-9:_-]');
});

test('minPeriod lowers the period floor for a local collector; stop restores 300', (t) => {
  const { d, mq, clock } = started({ minPeriod: 1, period: 2 });
  t.is(d.getPeriod(), 2);
  t.is(d.setPeriod(1), CODE.SUCCESS);
  clock.tick(3000);
  t.is(mq.pubs.length, 2, 'first tick at 2 s, re-armed at 1 s');
  d.stop();
  t.is(d.setPeriod(5), CODE.PERIOD_TOO_SHORT);
});

test('setMetrics rejects an unknown group', (t) => {
  const { d } = loadAgent();
  t.is(d.setMetrics(5, 1), CODE.INVALID_INPUT);
  t.is(d.setMetrics(-1, 1), CODE.INVALID_INPUT);
  t.is(d.setMetrics(G.NETWORK_STATS, 'x'), CODE.INVALID_INPUT);
});

test('error codes are stable numbers that strerror names', (t) => {
  const { d } = loadAgent();
  for (const [name, code] of Object.entries(CODE)) t.is(d.strerror(code), name);
  t.is(d.strerror(99), 'UNKNOWN');
  t.is(d.METRICS_ACCEPTED, undefined, 'event types are documented numbers, not exported names');
  t.is(d.SUCCESS, undefined, 'error codes too');
});

// --- subscribe, publish, report contents ---------------------------------------------------------------------

test('subscribes to accepted and rejected of its format (QoS 1) before the first publish, publishes QoS 1', (t) => {
  for (const json of [false, true]) {
    const { mq, clock } = started({ format: json ? 'json' : undefined });
    t.deepEqual(mq.subs.map((s) => [s.topic, s.qos]), [[base(THING, json) + '/accepted', 1], [base(THING, json) + '/rejected', 1]]);
    t.is(mq.pubs.length, 0);
    clock.tick(P);
    t.is(mq.pubs.length, 1);
    t.is(mq.pubs[0].topic, base(THING, json));
    t.is(mq.pubs[0].qos, 1);
  }
});

test('no publish before the subscriptions are granted; a refused subscription is retried on connected', (t) => {
  const { d, clock } = loadAgent();
  const mq = new MockClient();
  mq.autoAck = false;
  t.is(d.start({ mqtt: mq, thingName: THING }), CODE.SUCCESS);
  t.is(mq.subs.length, 2, 'subscribes at once');
  clock.tick(P);
  t.is(mq.pubs.length, 0, 'waiting for SUBACK');
  mq.subs[0].cb(new Error('not connected'));
  mq.emit('connected');
  t.is(mq.subs.length, 3, 'the refused topic, and only that one, asked again on connected');
  t.is(mq.subs[2].topic, base(THING) + '/accepted');
  clock.tick(P);
  t.is(mq.pubs.length, 0, 'still waiting for SUBACK');
  mq.subs[1].cb();
  t.is(mq.pubs.length, 0);
  mq.subs[2].cb();
  t.is(mq.pubs.length, 1, 'the due report goes once both are granted');
});

function contents(d: any, mq: MockClient, clock: any, json = false) {
  clock.tick(P);
  return decode(mq.pubs.at(-1)!, json);
}

test('report contents follow each metrics flag', (t) => {
  const { d, mq, clock } = started({ custom: () => ({ temp: { number: 21 } }) });
  const net = d.track(mockNet());
  const a = net.connect({ host: '10.0.0.1', port: 443 });
  a.emit('connect');
  const srv = net.createServer();
  srv.listen(8080);
  srv.accept('10.0.0.9', 5555);
  const udp = d.track(mockDgram).createSocket('udp4');
  udp.bind(5353);
  a.write('abc');

  let r = contents(d, mq, clock);
  t.deepEqual(Object.keys(r).sort(), ['cmet', 'hed', 'met']);
  t.deepEqual(r.cmet, { temp: [{ number: 21 }] });
  t.deepEqual(r.met.tc.ec.t, 2);
  t.deepEqual(r.met.tc.ec.cs, [{ rad: '10.0.0.1:443' }, { rad: '10.0.0.9:5555', lp: 8080 }]);
  t.deepEqual(r.met.tp, { t: 1, pts: [{ pt: 8080 }] });
  t.deepEqual(r.met.up, { t: 1, pts: [{ pt: 5353 }] });
  t.deepEqual(r.met.ns, { bi: 0, bo: 3, pi: 0, po: 1 });

  const cases: [number, number, (r: any) => void][] = [
    [G.TCP_CONNECTIONS, 0x1, (r) => t.deepEqual(r.met.tc, { ec: { t: 2 } })],
    [G.TCP_CONNECTIONS, 0x4, (r) => t.deepEqual(r.met.tc, { ec: { cs: [{ rad: '10.0.0.1:443' }, { rad: '10.0.0.9:5555' }] } })],
    [G.TCP_CONNECTIONS, 0x6, (r) => t.deepEqual(r.met.tc.ec.cs[1], { rad: '10.0.0.9:5555', lp: 8080 })],
    [G.TCP_CONNECTIONS, 0, (r) => t.false('tc' in r.met)],
    [G.LISTENING_TCP_PORTS, 0x1, (r) => t.deepEqual(r.met.tp, { t: 1 })],
    [G.LISTENING_TCP_PORTS, 0x2, (r) => t.deepEqual(r.met.tp, { pts: [{ pt: 8080 }] })],
    [G.LISTENING_TCP_PORTS, 0, (r) => t.false('tp' in r.met)],
    [G.LISTENING_UDP_PORTS, 0x1, (r) => t.deepEqual(r.met.up, { t: 1 })],
    [G.LISTENING_UDP_PORTS, 0, (r) => t.false('up' in r.met)],
    [G.NETWORK_STATS, 0, (r) => t.false('ns' in r.met)],
    [G.CUSTOM_METRICS, 0, (r) => t.false('cmet' in r)],
  ];
  for (const [g, f, check] of cases) {
    d.setMetrics(g, G.ALL_METRICS);
    d.setMetrics(g, f);
    check(contents(d, mq, clock));
    d.setMetrics(g, G.ALL_METRICS);
  }
  for (const g of [0, 1, 2, 3, 4]) d.setMetrics(g, 0);
  t.deepEqual(contents(d, mq, clock).met, {});
});

test('long tags and JSON', (t) => {
  const { d, mq, clock } = started({ format: 'json', longTags: true });
  const r = contents(d, mq, clock, true);
  t.deepEqual(Object.keys(r), ['header', 'metrics']);
  t.is(r.header.version, '1.0');
  t.true(r.header.report_id > 0);
});

test('report truncated to fit the buffer, slot overflow and report failures are events', (t) => {
  const { d, mq, clock, rec } = started({ slots: 2, bufferSize: 100 });
  const net = d.track(mockNet());
  for (let i = 0; i < 3; i++) net.connect({ host: '10.0.0.' + (i + 1), port: 1000 + i }).emit('connect');
  clock.tick(P);
  const id = decode(mq.pubs[0], false).hed.rid;
  t.true(mq.pubs[0].message.length <= 100);
  t.deepEqual(rec.events.map((e) => e.type), [EV.REPORT_TRUNCATED, EV.SLOTS_OVERFLOWED]);
  t.true(rec.events[0].code > 0);
  t.is(rec.events[0].reportId, id);
  t.is(rec.events[1].code, 1);
  d.stop();

  const b = started({ bufferSize: 64, longTags: true, format: 'json' });
  b.clock.tick(P);
  t.is(b.mq.pubs.length, 0);
  t.like(b.rec.events[0], { type: EV.REPORT_FAILED, code: CODE.NO_MEMORY });

  const c = started({ custom: () => ({ 'aws:x': { number: 1 } }) });
  c.clock.tick(P);
  t.like(c.rec.events[0], { type: EV.REPORT_FAILED, code: CODE.INVALID_INPUT, message: 'aws:x' });
  // what the service would reject is not published every period: the event names the metric (issue 9, item 7)
  for (const name of ['bad name', '', 'caf\u00e9']) {
    const m = started({ custom: () => ({ ok: { number: 1 }, [name]: { number: 1 } }) });
    m.clock.tick(P);
    t.is(m.mq.pubs.length, 0, `no report with the custom metric ${JSON.stringify(name)}`);
    t.like(m.rec.events[0], { type: EV.REPORT_FAILED, code: CODE.INVALID_INPUT, message: name });
  }
  const e = started({ custom: () => { throw new Error('sensor'); } });
  e.clock.tick(P);
  t.like(e.rec.events[0], { type: EV.REPORT_FAILED, code: CODE.INVALID_INPUT });
  e.clock.tick(P);
  t.is(e.rec.events.length, 2, 'keeps running');
});

// --- responses ---------------------------------------------------------------------------------------------

test('responses are matched by report id: unknown, duplicate and undecodable ones are UNEXPECTED_RESPONSE', (t) => {
  for (const json of [false, true]) {
    const { d, mq, rec, clock } = started({ format: json ? 'json' : 'cbor' });
    const b = base(THING, json);
    clock.tick(P);
    const id = decode(mq.pubs[0], json).hed.rid;
    mq.deliver(b + '/accepted', response(THING, id + 1, json));
    mq.deliver(b + '/accepted', response(THING, id, json));
    mq.deliver(b + '/accepted', response(THING, id, json));
    mq.deliver(b + '/rejected', '\xff\x00garbage');
    mq.deliver(b + '/accepted', '');
    mq.deliver(b + '/other', response(THING, id, json));
    mq.deliver('app/topic', 'hello');
    mq.deliver(base(THING, !json) + '/accepted', response(THING, id, !json));
    t.deepEqual(
      rec.events.map((e) => [e.type, e.reportId]),
      [[EV.UNEXPECTED_RESPONSE, id + 1], [EV.METRICS_ACCEPTED, id], [EV.UNEXPECTED_RESPONSE, id], [EV.UNEXPECTED_RESPONSE, 0], [EV.UNEXPECTED_RESPONSE, 0]],
    );
  }
});

test('a response to one of the last few reports still matches', (t) => {
  const { d, mq, rec, clock } = started();
  clock.tick(3 * P);
  const ids = mq.pubs.map((p) => decode(p, false).hed.rid);
  for (const id of ids.reverse()) mq.deliver(base(THING) + '/accepted', response(THING, id, false));
  t.deepEqual(rec.events.map((e) => e.type), [EV.METRICS_ACCEPTED, EV.METRICS_ACCEPTED, EV.METRICS_ACCEPTED]);
});

test('a CBOR response with floats, tags, arrays and negative numbers decodes', (t) => {
  const { d, mq, rec, clock } = started();
  clock.tick(P);
  const id = decode(mq.pubs[0], false).hed.rid;
  const payload = cborg.encode({ status: 'ACCEPTED', timestamp: 1.5, x: [-5, true, null, false, new Uint8Array([1, 2])], reportId: id, thingName: THING });
  mq.deliver(base(THING) + '/accepted', payload);
  t.is(rec.events[0].type, EV.METRICS_ACCEPTED);
});

// --- MQTT failures, disconnects ----------------------------------------------------------------------------

test('publish failure: PUBLISH_FAILED with MQTT_FAILURE, then the next tick reports again', (t) => {
  const { d, mq, rec, clock } = started();
  mq.publishError = new Error('gave up after 3 resends');
  clock.tick(P);
  t.deepEqual(rec.events, [{ type: EV.PUBLISH_FAILED, reportId: decode(mq.pubs[0], false).hed.rid, code: CODE.MQTT_FAILURE, message: 'gave up after 3 resends' }]);
  mq.publishError = null;
  mq.publish = function () {
    throw new Error('socket gone');
  } as any;
  clock.tick(P);
  t.like(rec.events[1], { type: EV.PUBLISH_FAILED, message: 'socket gone' });
  t.is(clock.countTimers(), 1);
});

test('subscribe failure: SUBSCRIBE_FAILED, no publish, retried at the next tick', (t) => {
  const l = loadAgent();
  const mq2 = new MockClient();
  const rec2 = recorder();
  mq2.subscribeError = new Error('SUBACK failure 0x80');
  t.is(l.d.start({ mqtt: mq2, thingName: THING, callback: rec2.callback }), CODE.SUCCESS);
  t.like(rec2.events[0], { type: EV.SUBSCRIBE_FAILED, code: CODE.MQTT_FAILURE, message: 'SUBACK failure 0x80' });
  l.clock.tick(300_000);
  t.is(mq2.pubs.length, 0, 'never publishes without both subscriptions');
  t.is(mq2.subs.length, 4, 'subscribed again at the tick');
  mq2.subscribeError = null;
  l.clock.tick(300_000);
  t.is(mq2.pubs.length, 1, 'granted at the retry: the due report goes');
  mq2.restore();
  t.is(mq2.subs.length, 6, 'granted topics are not asked again on connected (the client restores them)');
});

test('through a disconnect: ticks while down are skipped, after the reconnect the next tick reports once', (t) => {
  const { d, mq, clock } = started();
  clock.tick(P);
  t.is(mq.pubs.length, 1);
  mq.drop();
  clock.tick(5 * P);
  t.is(mq.pubs.length, 1);
  t.is(d.report(), CODE.MQTT_FAILURE);
  clock.tick(1000);
  mq.restore();
  t.is(mq.subs.length, 2, 'not subscribed again on connected: the client restores its subscriptions');
  t.is(mq.pubs.length, 1, 'no report at the reconnect itself');
  clock.tick(P - 1000);
  t.is(mq.pubs.length, 2, 'one report at the next tick, no burst');
  clock.tick(P);
  t.is(mq.pubs.length, 3);
  const ids = mq.pubs.map((p) => decode(p, false).hed.rid);
  t.true(ids[0] < ids[1] && ids[1] < ids[2]);
});

test('while a publish is in flight no report is written; report() says BUSY', (t) => {
  const { d, mq, clock } = started();
  mq.autoAck = false;
  clock.tick(P);
  t.is(mq.pubs.length, 1);
  t.is(d.report(), CODE.BUSY);
  clock.tick(P);
  t.is(mq.pubs.length, 1, 'the buffer is still being sent');
  mq.pubs[0].cb!();
  clock.tick(P);
  t.is(mq.pubs.length, 2);
  mq.pubs[1].cb!();
  t.is(d.report(), CODE.SUCCESS, 'report() publishes now');
  t.is(mq.pubs.length, 3);
});

test('stopped and started again from its callback while it writes a report: the new run reports', (t) => {
  // the application restarts the agent when slots overflow: the report being written is not published, and the
  // new run starts clean (the agent's numbers are shared between runs: they live in the ring's array)
  let restarted = 0;
  const { d, mq, clock } = started({
    slots: 1,
    callback: (e: any) => {
      if (e.type !== EV.SLOTS_OVERFLOWED || restarted++) return;
      d.stop();
      t.is(d.start({ mqtt: mq, thingName: THING, slots: 1 }), CODE.SUCCESS);
    },
  });
  const net = d.track(mockNet());
  for (let i = 0; i < 2; i++) net.connect({ host: '10.0.0.' + (i + 1), port: 1000 + i }).emit('connect');
  clock.tick(P);
  t.is(restarted, 1);
  t.is(mq.pubs.length, 0, 'the stopped run published nothing');
  clock.tick(P);
  t.is(mq.pubs.length, 1, 'the new run reports at its first tick');
  t.is(d.report(), CODE.SUCCESS, 'and is not left busy');
  t.is(mq.pubs.length, 2);
});

test('a throwing callback does not break the agent', (t) => {
  const { d, mq, clock } = started({
    callback: () => {
      throw new Error('app bug');
    },
  });
  clock.tick(P);
  const id = decode(mq.pubs[0], false).hed.rid;
  t.notThrows(() => mq.deliver(base(THING) + '/accepted', response(THING, id, false)));
  clock.tick(P);
  t.is(mq.pubs.length, 2);
  t.is(d.getPeriod(), 300);
});

test('stop releases the timer, the subscriptions and the listeners', (t) => {
  const { d, mq, clock } = started();
  t.is(mq.listenerCount('message'), 1);
  t.is(d.stop(), CODE.SUCCESS);
  t.is(clock.countTimers(), 0);
  t.deepEqual(mq.unsubs, [base(THING) + '/accepted', base(THING) + '/rejected']);
  for (const ev of ['message', 'connected', 'disconnected']) t.is(mq.listenerCount(ev), 0, ev);
  clock.tick(10 * P);
  t.is(mq.pubs.length, 0);
  t.is(d.stop(), CODE.NOT_STARTED);
});

// --- report ids ----------------------------------------------------------------------------------------------

test('report ids: a counter kept in Storage (written rarely) while the clock is not set, then epoch ms; never decreasing', (t) => {
  const storage = memStorage();
  const a = started({ minPeriod: 1, period: 1 }, { storage });
  a.clock.tick(2500 * 1000);
  const ids = a.mq.pubs.map((p) => decode(p, false).hed.rid);
  t.deepEqual(ids.slice(0, 3), [1, 2, 3]);
  t.is(ids.at(-1), 2500);
  t.is(storage.writes, 3, 'one Storage write per 1,000 ids');
  // reboot: the counter goes on above every id that may have been used
  const b = started({ minPeriod: 1, period: 1 }, { storage });
  b.clock.tick(1000);
  const first = decode(b.mq.pubs[0], false).hed.rid;
  t.true(first > 2500, String(first));
  // the clock gets set: epoch milliseconds
  b.setTime(1_718_000_000);
  b.clock.tick(1000);
  const epoch = decode(b.mq.pubs[1], false).hed.rid;
  t.true(Math.abs(epoch - 1_718_000_001_000) < 2, String(epoch));
  // set back (a bad NTP answer): still increasing
  b.setTime(1_700_000_000);
  b.clock.tick(2000);
  const after = b.mq.pubs.slice(2).map((p) => decode(p, false).hed.rid);
  t.deepEqual(after, [epoch + 1, epoch + 2]);
  const writes = storage.writes;
  // reboot without a clock after epoch ids: above them
  const c = started({ minPeriod: 1, period: 1 }, { storage });
  c.clock.tick(1000);
  t.true(decode(c.mq.pubs[0], false).hed.rid > epoch + 2);
  t.is(storage.writes, writes + 1);
});

test('epoch ids cost one Storage write a day', (t) => {
  const storage = memStorage();
  const a = started({ minPeriod: 1, period: 60 }, { storage, epoch: 1_718_000_000 });
  a.clock.tick(2 * 86400_000);
  t.is(a.mq.pubs.length, 2 * 1440);
  t.true(storage.writes <= 3, String(storage.writes));
});

// --- soak --------------------------------------------------------------------------------------------------

test('soak: 10,000 periods with connections coming and going: no growth in timers, listeners or tracked state', (t) => {
  const { d, mq, rec, clock } = started({ format: 'json' });
  const net = d.track(mockNet(false));
  const b = base(THING, true);
  let pubs = 0;
  mq.publish = function (this: MockClient, topic: string, message: Uint8Array, qos: number, cb: any) {
    pubs++;
    const r = JSON.parse(Buffer.from(message).toString());
    if (pubs % 7 === 0) return cb(new Error('lost'));
    cb();
    this.deliver(b + (pubs % 5 ? '/accepted' : '/rejected'), response(THING, r.header?.report_id ?? r.hed.rid, true, pubs % 5 ? undefined : { code: 'Throttled', message: 'x' }));
  } as any;
  const listeners = () => ['message', 'connected', 'disconnected'].map((e) => mq.listenerCount(e)).join();
  const l0 = listeners();
  for (let i = 0; i < 10_000; i++) {
    const s = net.connect({ host: '10.9.0.' + (i % 200), port: 80 });
    s.emit('connect');
    if (i % 1000 === 999) mq.drop(), mq.restore();
    clock.tick(P);
    s.emit('close', false);
    rec.events.length = 0;
  }
  t.is(clock.countTimers(), 1);
  t.is(listeners(), l0);
  t.true(pubs >= 9_990, String(pubs));
  // the ring is empty again: every slot was released
  const m2 = new MockClient();
  d.stop();
  d.start({ mqtt: m2, thingName: THING, format: 'json' });
  clock.tick(P);
  t.deepEqual(JSON.parse(Buffer.from(m2.pubs[0].message).toString()).met.tc, { ec: { cs: [], t: 0 } });
});

test('anything else that throws in a tick is a REPORT_FAILED event with INTERNAL_FAILURE and its message; the next tick reports', (t) => {
  let broken = true;
  const { d, mq, rec, clock } = started({}, { clockBroken: () => broken });
  clock.tick(P);
  t.deepEqual(rec.events, [{ type: EV.REPORT_FAILED, reportId: 0, code: CODE.INTERNAL_FAILURE, message: 'clock broken' }]);
  t.is(mq.pubs.length, 0);
  broken = false;
  clock.tick(P);
  t.is(mq.pubs.length, 1);
});
