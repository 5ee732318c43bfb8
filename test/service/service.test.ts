// The service over MQTT: its own broker (aedes on a free loopback port) or an external mosquitto; a fake device
// (the npm mqtt client) publishes reports and reads the answers on its accepted/rejected topics.
import test from 'ava';
import { connect } from 'node:net';
import mqtt from 'mqtt';
import * as cborg from 'cborg';
import { startService, type Service, type VerdictEvent } from '../../service/service.ts';
import { startMosquitto, mosquittoPath } from '../helpers/mosquitto.ts';
import { device, longDoc, shortDoc, type Format } from './helpers.ts';

async function service(t: any, opts: Parameters<typeof startService>[0] = {}): Promise<Service> {
  const svc = await startService({ port: 0, minPeriod: 0, ...opts });
  t.teardown(() => svc.close());
  return svc;
}

/** A device; one per thing and format (its client id says both: the broker here is open, as in development). */
async function dev(t: any, svc: Service, thing: string, format: Format) {
  const d = await device(svc.url, thing, format, { clientId: `${thing}-${format}` });
  t.teardown(() => d.close());
  return d;
}

test('a CBOR report with short names is accepted, with an AWS-shaped CBOR answer on .../cbor/accepted', async (t) => {
  const svc = await service(t);
  t.regex(svc.url, /^mqtt:\/\/127\.0\.0\.1:\d+$/);
  t.is(svc.url, `mqtt://127.0.0.1:${svc.port}`);
  const d = await dev(t, svc, 'dev-cbor', 'cbor');
  const before = Date.now();
  const a = await d.send(shortDoc(1530305228));
  t.is(a.status, 'accepted');
  t.notThrows(() => cborg.decode(a.raw), 'the answer is CBOR');
  t.deepEqual(Object.keys(a.body).sort(), ['reportId', 'status', 'thingName', 'timestamp']);
  t.like(a.body, { thingName: 'dev-cbor', reportId: 1530305228, status: 'ACCEPTED' });
  t.true(a.body.timestamp >= before && a.body.timestamp <= Date.now(), 'timestamp in epoch ms');
  const [r] = svc.reports('dev-cbor');
  t.like(r, { reportId: 1530305228, format: 'cbor', verdict: 'ACCEPTED', at: a.body.timestamp });
  t.deepEqual(r.doc, shortDoc(1530305228));
  t.deepEqual(svc.things(), ['dev-cbor']);
});

test('a JSON report with long names is accepted, with a JSON answer on .../json/accepted', async (t) => {
  const svc = await service(t);
  const d = await dev(t, svc, 'dev-json', 'json');
  const a = await d.send(longDoc(1530304554));
  t.is(a.status, 'accepted');
  t.deepEqual(JSON.parse(a.raw.toString()), a.body, 'the answer is JSON');
  t.deepEqual(a.body, { thingName: 'dev-json', reportId: 1530304554, status: 'ACCEPTED', timestamp: a.body.timestamp });
  t.like(svc.reports('dev-json')[0], { format: 'json', verdict: 'ACCEPTED' });
});

/** Each reason a report is refused, as a device sends it, and the ErrorCode it gets. */
const REJECTS: { what: string; format: Format; report: unknown; raw?: boolean; code: string; message: RegExp; reportId?: number }[] = [
  { what: 'undecodable CBOR', format: 'cbor', report: [0xff, 0x00], raw: true, code: 'Malformed', message: /Not a CBOR document/ },
  { what: 'undecodable JSON', format: 'json', report: Buffer.from('{"hed":{"rid":3,'), raw: true, code: 'Malformed', message: /Not a JSON document/ },
  { what: 'JSON sent on the CBOR topic', format: 'cbor', report: Buffer.from(JSON.stringify(shortDoc(3))), raw: true, code: 'Malformed', message: /CBOR/ },
  { what: 'missing header', format: 'cbor', report: { met: {} }, code: 'MissingHeader', message: /Missing header/ },
  { what: 'wrong version', format: 'json', report: { header: { report_id: 3, version: '2.0' }, metrics: {} }, code: 'InvalidPayload', message: /unsupported version/, reportId: 3 },
  { what: 'missing version', format: 'cbor', report: { hed: { rid: 3 }, met: {} }, code: 'InvalidPayload', message: /hed is missing v/, reportId: 3 },
  { what: 'report id a string', format: 'json', report: longDoc('3'), code: 'InvalidPayload', message: /report_id is "3", not an integer/ },
  { what: 'report id zero', format: 'cbor', report: shortDoc(0), code: 'InvalidPayload', message: /rid is 0, out of range/, reportId: 0 },
  { what: 'report id not above the last accepted (100)', format: 'cbor', report: edit(shortDoc(100), (d) => (d.cmet.MyMetricOfType_Number = [{ number: 2 }])), code: 'InvalidPayload', message: /not greater than 100/, reportId: 100 },
  { what: 'unknown key', format: 'cbor', report: { ...shortDoc(3), sig: 'x' }, code: 'InvalidPayload', message: /unknown key "sig"/, reportId: 3 },
  { what: 'long and short names mixed', format: 'json', report: { hed: { rid: 3, v: '1.0' }, metrics: {} }, code: 'InvalidPayload', message: /long name in a document of short names/, reportId: 3 },
  { what: 'bad remote_addr', format: 'cbor', report: edit(shortDoc(3), (d) => (d.met.tc.ec.cs[0].rad = '192.168.0.1')), code: 'InvalidPayload', message: /rad is "192\.168\.0\.1"/, reportId: 3 },
  { what: 'remote port out of range', format: 'cbor', report: edit(shortDoc(3), (d) => (d.met.tc.ec.cs[0].rad = '10.1.2.3:65536')), code: 'InvalidPayload', message: /port out of range/, reportId: 3 },
  { what: 'listening port out of range', format: 'json', report: edit(longDoc(3), (d) => (d.metrics.listening_udp_ports.ports[0].port = 0)), code: 'InvalidPayload', message: /port is 0, out of range 1\.\.65535/, reportId: 3 },
  { what: 'negative counter', format: 'cbor', report: edit(shortDoc(3), (d) => (d.met.ns.po = -1)), code: 'InvalidPayload', message: /ns\.po is -1/, reportId: 3 },
  { what: 'list over its limit', format: 'cbor', report: edit(shortDoc(3), (d) => (d.met.tp.pts = Array.from({ length: 51 }, (_, i) => ({ pt: i + 1 })))), code: 'InvalidPayload', message: /51 entries, more than 50/, reportId: 3 },
  { what: 'custom metric not in a list', format: 'json', report: edit(longDoc(3), (d) => (d.custom_metrics.cpu = { number: 0 })), code: 'InvalidPayload', message: /^Malformed metrics report: custom_metrics\.cpu/, reportId: 3 },
  { what: 'custom metric with a bad IP', format: 'cbor', report: edit(shortDoc(3), (d) => (d.cmet.MyMetricOfType_IpList = [{ ip_list: ['300.0.0.1'] }])), code: 'InvalidPayload', message: /not an IP address/, reportId: 3 },
];

function edit(doc: any, f: (d: any) => void): any {
  f(doc);
  return doc;
}

test('every reason to reject gets its ErrorCode on .../rejected, in the report format, with the report id when readable', async (t) => {
  const svc = await service(t);
  const cbor = await dev(t, svc, 'dev-bad', 'cbor');
  const json = await dev(t, svc, 'dev-bad', 'json');
  t.is((await cbor.send(shortDoc(100))).status, 'accepted');
  for (const c of REJECTS) {
    const a = await (c.format === 'cbor' ? cbor : json).send(c.report, c.raw);
    t.is(a.status, 'rejected', c.what);
    t.is(a.body.status, 'REJECTED', c.what);
    t.is(a.body.thingName, 'dev-bad', c.what);
    t.is(a.body.statusDetails.ErrorCode, c.code, c.what);
    t.regex(a.body.statusDetails.ErrorMessage, c.message, c.what);
    t.is(a.body.reportId, c.reportId, c.what);
    t.is(typeof a.body.timestamp, 'number');
    t.deepEqual(Object.keys(a.body.statusDetails).sort(), ['ErrorCode', 'ErrorMessage']);
  }
  const kept = svc.reports('dev-bad');
  t.is(kept.length, REJECTS.length + 1);
  t.like(kept.at(-1), { verdict: 'REJECTED', errorCode: 'InvalidPayload' });
  t.is(kept[1].doc, undefined, 'an undecodable report is kept without a document');
  t.is((await json.send(longDoc(101))).status, 'accepted', 'and the thing still reports');
});

test('reports faster than minPeriod are throttled', async (t) => {
  const svc = await service(t, { minPeriod: 1 });
  const d = await dev(t, svc, 'dev-fast', 'json');
  t.is((await d.send(longDoc(1))).status, 'accepted');
  const a = await d.send(longDoc(2));
  t.is(a.status, 'rejected');
  t.like(a.body, { reportId: 2, statusDetails: { ErrorCode: 'Throttled' } });
  t.regex(a.body.statusDetails.ErrorMessage, /after the last accepted report, 1 s at least/);
  await new Promise((r) => setTimeout(r, svc.reports('dev-fast')[0].at + 1050 - Date.now()));
  t.is((await d.send(edit(longDoc(2), (d) => (d.custom_metrics.MyMetricOfType_Number = [{ number: 2 }])))).status, 'accepted', 'after minPeriod');
});

test('minPeriod defaults to 300 s, as AWS throttles', async (t) => {
  const svc = await startService({ port: 0 });
  t.teardown(() => svc.close());
  const d = await dev(t, svc, 'dev-default', 'cbor');
  t.is((await d.send(shortDoc(1))).status, 'accepted');
  t.is((await d.send(shortDoc(2))).body.statusDetails.ErrorCode, 'Throttled');
});

test('recent reports are kept, `keep` of all things together, and each verdict is an event', async (t) => {
  const svc = await service(t, { keep: 3 });
  const events: VerdictEvent[] = [];
  svc.on('verdict', (v) => events.push(v));
  const a = await dev(t, svc, 'dev-a', 'cbor');
  const b = await dev(t, svc, 'dev-b', 'json');
  for (let i = 1; i <= 5; i++) await a.send(shortDoc(i));
  await b.send(longDoc(1));
  await b.send(edit(longDoc(1), (d) => (d.custom_metrics.MyMetricOfType_Number = [{ number: 2 }])));
  t.deepEqual(
    svc.reports('dev-a').map((r) => r.reportId),
    [5],
  );
  t.deepEqual(
    svc.reports('dev-b').map((r) => r.verdict),
    ['ACCEPTED', 'REJECTED'],
  );
  t.deepEqual(svc.reports('dev-c'), []);
  t.deepEqual(svc.things().sort(), ['dev-a', 'dev-b']);
  t.is(events.length, 7);
  t.like(events.at(-1), { thing: 'dev-b', reportId: 1, format: 'json', verdict: 'REJECTED', errorCode: 'InvalidPayload' });
  t.deepEqual(Object.keys(events[0]).sort(), ['at', 'doc', 'exactId', 'format', 'reportId', 'thing', 'verdict']);
});

test('the default is the 20 most recent reports', async (t) => {
  const svc = await service(t);
  const d = await dev(t, svc, 'dev-20', 'cbor');
  for (let i = 1; i <= 22; i++) await d.send(shortDoc(i));
  t.is(svc.reports('dev-20').length, 20);
  t.is(svc.reports('dev-20')[0].reportId, 3);
});

test('answers go to the reporting thing only, never back on a report topic', async (t) => {
  const svc = await service(t);
  const spy = await mqtt.connectAsync(svc.url, { clientId: 'spy', reconnectPeriod: 0 });
  t.teardown(() => spy.endAsync());
  const seen: string[] = [];
  spy.on('message', (topic) => seen.push(topic));
  await spy.subscribeAsync('$aws/things/#', { qos: 1 });
  const a = await dev(t, svc, 'dev-x', 'cbor');
  await dev(t, svc, 'dev-y', 'cbor');
  await a.send(shortDoc(1));
  await a.send(edit(shortDoc(1), (d) => (d.cmet.MyMetricOfType_Number = [{ number: 2 }])));
  await new Promise((r) => setTimeout(r, 100));
  t.deepEqual(seen, [
    '$aws/things/dev-x/defender/metrics/cbor',
    '$aws/things/dev-x/defender/metrics/cbor/accepted',
    '$aws/things/dev-x/defender/metrics/cbor',
    '$aws/things/dev-x/defender/metrics/cbor/rejected',
  ]);
  t.is(svc.reports('dev-x').length, 2, 'its own answers are not taken for reports');
  t.deepEqual(svc.reports('dev-y'), []);
});

test('close() stops the broker and every connection; twice is fine', async (t) => {
  const svc = await startService({ port: 0, minPeriod: 0 });
  const d = await device(svc.url, 'dev-close', 'cbor');
  await d.send(shortDoc(1));
  const gone = new Promise<void>((r) => d.client.once('close', () => r()));
  await svc.close();
  await svc.close();
  await gone;
  await d.client.endAsync(true);
  const refused = await new Promise<boolean>((r) => {
    const s = connect(svc.port, '127.0.0.1');
    s.once('connect', () => (s.destroy(), r(false)));
    s.once('error', () => r(true));
  });
  t.true(refused, 'the port is closed');
});

test('a port in use is an error, not a hang', async (t) => {
  const svc = await service(t);
  await t.throwsAsync(startService({ port: svc.port }), { code: 'EADDRINUSE' });
});

test('attached to an external mosquitto: same topics, same answers, no broker of its own', async (t) => {
  if (!mosquittoPath) return t.fail('mosquitto is not installed (apt-get install mosquitto; .ci/run does it)');
  const broker = await startMosquitto();
  t.teardown(() => broker.stop());
  const url = `mqtt://127.0.0.1:${broker.port}`;
  const svc = await service(t, { broker: url, minPeriod: 0 });
  t.is(svc.url, url);
  t.is(svc.port, broker.port);
  const cbor = await dev(t, svc, 'dev-m', 'cbor');
  const json = await dev(t, svc, 'dev-m', 'json');
  const a = await cbor.send(shortDoc(1));
  t.like(a, { status: 'accepted', body: { thingName: 'dev-m', reportId: 1, status: 'ACCEPTED' } });
  const r = await json.send(edit(longDoc(1), (d) => (d.custom_metrics.MyMetricOfType_Number = [{ number: 2 }])));
  t.like(r, { status: 'rejected', body: { reportId: 1, statusDetails: { ErrorCode: 'InvalidPayload' } } });
  t.is((await json.send(Buffer.from('nope'), true)).body.statusDetails.ErrorCode, 'Malformed');
  t.is((await json.send(longDoc(2))).status, 'accepted');
  t.deepEqual(
    svc.reports('dev-m').map((x) => `${x.format} ${x.verdict}`),
    ['cbor ACCEPTED', 'json REJECTED', 'json REJECTED', 'json ACCEPTED'],
  );
});

test('an external broker that is not there is an error at start', async (t) => {
  const svc = await service(t);
  await svc.close();
  await t.throwsAsync(startService({ broker: `mqtt://127.0.0.1:${svc.port}` }));
});
