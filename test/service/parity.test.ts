// What AWS IoT Device Defender does, done the same here, through the embedded aedes: text is UTF-8 in CBOR as in
// JSON, JSON integers are exact beyond 2^53, every answer to a report with an id carries it, thing names are AWS's,
// and a redelivered report gets the answer it got the first time.
import test from 'ava';
import mqtt from 'mqtt';
import { startService, type Service } from '../../service/service.ts';
import { device, shortDoc, longDoc, encode } from './helpers.ts';

async function service(t: any): Promise<Service> {
  const svc = await startService({ port: 0, minPeriod: 0 });
  t.teardown(() => svc.close());
  return svc;
}

/** A report with one custom string metric whose CBOR text bytes are `bytes` (length < 24). */
function cborWithText(bytes: number[]): Buffer {
  const ok = Buffer.from(encode({ hed: { rid: 5, v: '1.0' }, cmet: { s: [{ string_list: ['A'.repeat(bytes.length)] }] } }, 'cbor'));
  const at = ok.indexOf(Buffer.from([0x60 + bytes.length, ...Array(bytes.length).fill(0x41)]));
  ok.set(bytes, at + 1);
  return ok;
}

test('CBOR text strings that are not UTF-8 are Malformed, as in JSON', async (t) => {
  const svc = await service(t);
  const d = await device(svc.url, 'utf8-dev', 'cbor');
  t.teardown(() => d.close());
  t.is((await d.send(cborWithText([0x68, 0xc3, 0xa9]), true)).status, 'accepted', 'hé is fine');
  for (const [what, bytes] of [
    ['ff fe', [0xff, 0xfe]],
    ['overlong "/"', [0xc0, 0xaf]],
    ['encoded surrogate U+D800', [0xed, 0xa0, 0x80]],
  ] as const) {
    const a = await d.send(cborWithText([...bytes]), true);
    t.like(a, { status: 'rejected', body: { statusDetails: { ErrorCode: 'Malformed' } } }, what);
    t.regex(a.body.statusDetails.ErrorMessage, /not UTF-8/, what);
  }
});

test('JSON report ids are exact beyond 2^53: 2^53+1 after 2^53 is accepted, and the answer carries it exactly', async (t) => {
  const svc = await service(t);
  const d = await device(svc.url, 'big-id', 'json');
  t.teardown(() => d.close());
  const doc = (rid: string) => Buffer.from(JSON.stringify(longDoc(0)).replace('"report_id":0', `"report_id":${rid}`));
  t.is((await d.send(doc('9007199254740992'), true)).status, 'accepted');
  const a = await d.send(doc('9007199254740993'), true);
  t.is(a.status, 'accepted');
  t.regex(a.raw.toString(), /"reportId":9007199254740993,/);
  const r = await d.send(doc('9223372036854775808'), true);
  t.like(r, { status: 'rejected', body: { statusDetails: { ErrorCode: 'InvalidPayload' } } });
  t.regex(r.raw.toString(), /"reportId":9223372036854775808,/, 'out of range (2^63), and still named in the answer');
  t.is(svc.reports('big-id')[1].exactId, '9007199254740993');
});

test('thing names are [a-zA-Z0-9:_-]{1,128}: an empty or invalid one is answered REJECTED, InvalidPayload', async (t) => {
  const svc = await service(t);
  const c = await mqtt.connectAsync(svc.url, { clientId: 'names', reconnectPeriod: 0 });
  t.teardown(() => c.endAsync(true));
  await c.subscribeAsync(['$aws/things//defender/metrics/json/+', '$aws/things/bad name é/defender/metrics/json/+'], { qos: 1 });
  const got: { topic: string; body: any }[] = [];
  c.on('message', (topic, payload) => got.push({ topic, body: JSON.parse(payload.toString()) }));
  await c.publishAsync('$aws/things//defender/metrics/json', encode(longDoc(7), 'json'), { qos: 1 });
  await c.publishAsync('$aws/things/bad name é/defender/metrics/json', encode(longDoc(8), 'json'), { qos: 1 });
  for (let i = 0; got.length < 2 && i < 500; i++) await new Promise((r) => setTimeout(r, 10));
  t.like(got[0], { topic: '$aws/things//defender/metrics/json/rejected', body: { thingName: '', reportId: 7, status: 'REJECTED', statusDetails: { ErrorCode: 'InvalidPayload', ErrorMessage: 'Empty thing name' } } });
  t.like(got[1], { topic: '$aws/things/bad name é/defender/metrics/json/rejected', body: { reportId: 8, statusDetails: { ErrorCode: 'InvalidPayload' } } });
  t.regex(got[1].body.statusDetails.ErrorMessage, /Invalid thing name/);
  t.deepEqual(svc.things(), []);
});

test('a redelivered report (same thing, id, payload) gets its first answer again; a new payload under that id is rejected', async (t) => {
  const svc = await service(t);
  const d = await device(svc.url, 'redeliver', 'cbor');
  t.teardown(() => d.close());
  const first = await d.send(shortDoc(1));
  t.is(first.status, 'accepted');
  const again = await d.send(shortDoc(1));
  t.deepEqual(again.body, first.body, 'ACCEPTED, with the first timestamp');
  const other = await d.send({ ...shortDoc(1), cmet: { n: [{ number: 2 }] } });
  t.like(other.body, { reportId: 1, status: 'REJECTED', statusDetails: { ErrorCode: 'InvalidPayload' } });
  t.deepEqual(
    svc.reports('redeliver').map((r) => r.verdict),
    ['ACCEPTED', 'REJECTED'],
    'the redelivery is not a second report',
  );
});

test('a bad broker URL, or a broker not there, is one clear line', async (t) => {
  for (const [broker, message] of [
    ['not a url', /^broker "not a url" is not a URL \(mqtt:\/\/HOST:PORT or mqtts:\/\/HOST:PORT\)$/],
    ['http://127.0.0.1:1883', /^broker http:\/\/127\.0\.0\.1:1883: http: is not mqtt: or mqtts:$/],
    ['mqtt://127.0.0.1:1', /^cannot attach to the MQTT broker at mqtt:\/\/127\.0\.0\.1:1: .*ECONNREFUSED/],
  ] as const) {
    const err = await t.throwsAsync(startService({ broker }));
    t.regex(err!.message, message);
    t.false(err!.message.includes('\n'), 'one line');
  }
});
