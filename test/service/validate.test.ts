// The pure parts of the service: topics, decoding, the document specification, and the judge (throttling,
// increasing report ids, remembered reports) on a fake clock.
import test from 'ava';
import * as cborg from 'cborg';
import { reportTopic, responseTopic, matchReportTopic, matchResponseTopic, REPORT_FILTERS, alertTopic, isAlertTopic } from '../../service/topics.ts';
import { decodeReport, validateReport, thingNameError, peekReportId, ReportError, MAX_PAYLOAD, MAX_LIST } from '../../service/validate.ts';
import { Judge, responseBody, encodeResponse } from '../../service/judge.ts';
import { longDoc, shortDoc, encode } from './helpers.ts';

/** The error code validateReport throws for doc, or 'OK' with the report id. */
function verdict(doc: unknown): string {
  try {
    return 'OK ' + validateReport(doc).reportId;
  } catch (err) {
    if (err instanceof ReportError) return err.code;
    throw err;
  }
}

function message(doc: unknown): string {
  try {
    validateReport(doc);
    return '';
  } catch (err) {
    return (err as Error).message;
  }
}

/** shortDoc(1) changed by f. */
function short(f: (d: any) => void): any {
  const d = shortDoc(1);
  f(d);
  return d;
}

function long(f: (d: any) => void): any {
  const d = longDoc(1);
  f(d);
  return d;
}

// --- topics ----------------------------------------------------------------------------------------------

test('topics: built and matched', (t) => {
  t.is(reportTopic('dev-1', 'cbor'), '$aws/things/dev-1/defender/metrics/cbor');
  t.is(responseTopic('dev-1', 'json', 'rejected'), '$aws/things/dev-1/defender/metrics/json/rejected');
  t.deepEqual(REPORT_FILTERS, ['$aws/things/+/defender/metrics/cbor', '$aws/things/+/defender/metrics/json']);
  t.deepEqual(matchReportTopic('$aws/things/dev-1/defender/metrics/json'), { thing: 'dev-1', format: 'json' });
  t.deepEqual(matchReportTopic(reportTopic('a:b_c-d', 'cbor')), { thing: 'a:b_c-d', format: 'cbor' });
  t.deepEqual(matchReportTopic('$aws/things//defender/metrics/cbor'), { thing: '', format: 'cbor' }, 'an empty name, to be answered as invalid');
  t.deepEqual(matchResponseTopic('$aws/things/dev-1/defender/metrics/json/rejected'), { thing: 'dev-1', format: 'json', status: 'rejected' });
  t.is(matchResponseTopic('$aws/things/dev-1/defender/metrics/json'), null);
  t.is(matchResponseTopic('$aws/things/dev-1/defender/metrics/json/other'), null);
  for (const other of [
    '$aws/things/dev-1/defender/metrics/json/accepted',
    '$aws/things/dev-1/defender/metrics/cbor/rejected',
    '$aws/things/a/b/defender/metrics/cbor',
    '$aws/things/dev-1/defender/metrics/xml',
    '$aws/things/dev-1/shadow/update',
    'things/dev-1/defender/metrics/cbor',
  ]) {
    t.is(matchReportTopic(other), null, other);
  }
  t.is(alertTopic('dev-1'), 'defender/alerts/dev-1');
  t.is(alertTopic('dev-1', 'ops/alerts'), 'ops/alerts/dev-1');
  t.true(isAlertTopic(alertTopic('dev-1')));
  t.false(isAlertTopic('defender/alertsx/dev-1'));
  t.false(isAlertTopic('$aws/things/dev-1/defender/metrics/json'));
});

// --- decoding --------------------------------------------------------------------------------------------

function decodeCode(payload: Uint8Array, format: 'cbor' | 'json'): string {
  try {
    decodeReport(payload, format);
    return 'OK';
  } catch (err) {
    return (err as ReportError).code;
  }
}

test('decoding: CBOR strictly, JSON as UTF-8; anything else is Malformed', (t) => {
  t.is(decodeCode(encode(shortDoc(1), 'cbor'), 'cbor'), 'OK');
  t.is(decodeCode(encode(longDoc(1), 'json'), 'json'), 'OK');
  const bad: [string, number[] | string, 'cbor' | 'json'][] = [
    ['empty CBOR', [], 'cbor'],
    ['CBOR break alone', [0xff], 'cbor'],
    ['truncated CBOR', [...cborg.encode(shortDoc(1))].slice(0, 20), 'cbor'],
    ['CBOR with trailing bytes', [...cborg.encode({ hed: 1 }), 0x00], 'cbor'],
    ['CBOR integer not in its shortest form', [0xa1, 0x61, 0x74, 0x18, 0x01], 'cbor'],
    ['CBOR map key not a string', [0xa1, 0x01, 0x02], 'cbor'],
    ['CBOR duplicate map key', [0xa2, 0x61, 0x74, 0x01, 0x61, 0x74, 0x02], 'cbor'],
    ['CBOR tag', [0xc1, 0x01], 'cbor'],
    ['CBOR undefined', [0xa1, 0x61, 0x74, 0xf7], 'cbor'],
    ['CBOR array at the top', [0x81, 0x01], 'cbor'],
    ['JSON syntax error', '{"hed": ', 'json'],
    ['JSON not UTF-8', [0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d], 'json'],
    ['JSON array at the top', '[1,2]', 'json'],
    ['JSON null', 'null', 'json'],
    ['CBOR sent as JSON', [...cborg.encode(shortDoc(1))], 'json'],
  ];
  for (const [what, bytes, format] of bad) {
    const payload = typeof bytes === 'string' ? Buffer.from(bytes) : new Uint8Array(bytes);
    t.is(decodeCode(payload, format), 'Malformed', what);
  }
});

test('decoding: a payload over 128 KB is InvalidPayload', (t) => {
  const big = encode({ ...longDoc(1), pad: 'x'.repeat(MAX_PAYLOAD) }, 'json');
  t.is(decodeCode(big, 'json'), 'InvalidPayload');
});

// --- the specification -----------------------------------------------------------------------------------

test('the guide examples are valid, in long and in short names', (t) => {
  t.is(verdict(longDoc()), 'OK 1530304554');
  t.is(verdict(shortDoc()), 'OK 1530305228');
  t.is(validateReport(longDoc()).tags, 'long');
  t.is(validateReport(shortDoc()).tags, 'short');
  t.is(verdict(cborg.decode(cborg.encode(shortDoc(7)))), 'OK 7');
});

test('every block but the header is optional; metrics or custom_metrics must be there', (t) => {
  t.is(verdict({ hed: { rid: 1, v: '1.0' }, met: {} }), 'OK 1');
  t.is(verdict({ header: { report_id: 1, version: '1.0' }, custom_metrics: { battery: [{ number: 87.5 }] } }), 'OK 1');
  t.is(verdict({ hed: { rid: 1, v: '1.0' }, met: { tc: {} } }), 'OK 1');
  t.is(verdict({ hed: { rid: 1, v: '1.0' }, met: { tc: { ec: { t: 0 } }, tp: { t: 0 }, up: { pts: [] } } }), 'OK 1');
  t.is(verdict({ hed: { rid: 1, v: '1.0' }, met: { ns: { bi: 0 } } }), 'OK 1');
  t.is(verdict({ hed: { rid: 1, v: '1.0' } }), 'InvalidPayload');
  t.regex(message({ hed: { rid: 1, v: '1.0' } }), /metrics or custom_metrics/);
});

test('header: missing is MissingHeader; incomplete or wrong is InvalidPayload', (t) => {
  t.is(verdict({ met: {} }), 'MissingHeader');
  t.is(verdict({ metrics: {}, custom_metrics: {} }), 'MissingHeader');
  t.is(verdict({}), 'MissingHeader');
  t.is(verdict({ hed: 1, met: {} }), 'InvalidPayload');
  t.is(verdict({ hed: { v: '1.0' }, met: {} }), 'InvalidPayload');
  t.regex(message({ hed: { v: '1.0' }, met: {} }), /hed is missing rid/);
  t.regex(message({ header: { version: '1.0' }, metrics: {} }), /header is missing report_id/);
  t.is(verdict({ hed: { rid: 1 }, met: {} }), 'InvalidPayload');
  t.regex(message({ hed: { rid: 1 }, met: {} }), /missing v\b/);
});

test('header: version "1.0" only, as a string', (t) => {
  for (const v of ['2.0', '1.1', '1', '', ' 1.0']) {
    t.is(verdict(short((d) => (d.hed.v = v))), 'InvalidPayload', v);
    t.regex(message(short((d) => (d.hed.v = v))), /unsupported version/);
  }
  t.is(verdict(short((d) => (d.hed.v = 1.0))), 'InvalidPayload');
  t.regex(message(short((d) => (d.hed.v = 1))), /hed\.v is 1, not a string/);
});

test('header: report id is a positive integer', (t) => {
  t.is(verdict(shortDoc(1)), 'OK 1');
  t.is(verdict(shortDoc(1764012345678)), 'OK 1764012345678');
  t.is(validateReport(shortDoc(2n ** 63n - 1n)).exactId, 2n ** 63n - 1n);
  for (const rid of [0, -1, 1.5, '1530305228', null, true, [1], { n: 1 }, 2n ** 63n, NaN]) {
    t.is(verdict(shortDoc(rid)), 'InvalidPayload', String(rid));
  }
  t.regex(message(shortDoc('7')), /hed\.rid is "7", not an integer/);
});

test('peekReportId: the id as sent when it is an integer, for the response to a rejected report', (t) => {
  t.is(peekReportId(shortDoc(12)), 12n);
  t.is(peekReportId(longDoc(13)), 13n);
  t.is(peekReportId(shortDoc(-4)), -4n);
  t.is(peekReportId(shortDoc(2n ** 63n - 1n)), 2n ** 63n - 1n, 'exact, beyond 2^53');
  t.is(peekReportId(shortDoc('12')), undefined);
  t.is(peekReportId(shortDoc(1.5)), undefined);
  t.is(peekReportId({ met: {} }), undefined);
  t.is(peekReportId([1]), undefined);
});

test('unknown keys are refused, at every level', (t) => {
  const cases: [string, (d: any) => void][] = [
    ['top', (d) => (d.extra = 1)],
    ['header', (d) => (d.hed.ts = 1)],
    ['metrics', (d) => (d.met.cpu = 1)],
    ['tcp_connections', (d) => (d.met.tc.lc = {})],
    ['established_connections', (d) => (d.met.tc.ec.x = 1)],
    ['connection', (d) => (d.met.tc.ec.cs[0].state = 'ESTABLISHED')],
    ['listening ports', (d) => (d.met.tp.x = 1)],
    ['port entry', (d) => (d.met.up.pts[0].proto = 'udp')],
    ['network_stats', (d) => (d.met.ns.drops = 0)],
  ];
  for (const [where, f] of cases) t.is(verdict(short(f)), 'InvalidPayload', where);
  t.regex(message(short((d) => (d.met.ns.drops = 0))), /met\.ns has an unknown key "drops"/);
  // a long name in a short document is refused too (below), and so is a name of another block
  t.is(verdict(short((d) => (d.met.pt = 1))), 'InvalidPayload');
});

test('long and short names are not mixed in one document', (t) => {
  t.is(verdict({ header: { rid: 1, v: '1.0' }, met: {} }), 'InvalidPayload');
  t.is(verdict({ hed: { rid: 1, v: '1.0' }, metrics: {} }), 'InvalidPayload');
  t.is(verdict(short((d) => ((d.met.network_stats = d.met.ns), delete d.met.ns))), 'InvalidPayload');
  t.is(verdict(long((d) => (d.metrics.tcp_connections.established_connections.connections[1] = { rad: '1.2.3.4:5' }))), 'InvalidPayload');
  t.regex(message({ hed: { rid: 1, v: '1.0' }, metrics: {} }), /metrics is a long name in a document of short names/);
  // custom metric names are the user's, never tags: a short document may name a metric "bytes_in"
  t.is(verdict({ hed: { rid: 1, v: '1.0' }, cmet: { bytes_in: [{ number: 1 }] } }), 'OK 1');
});

test('remote_addr: IPv4:port or [IPv6]:port, valid octets and port', (t) => {
  const rad = (a: unknown) => verdict(short((d) => (d.met.tc.ec.cs[0].rad = a)));
  for (const ok of ['192.168.0.1:8000', '0.0.0.0:0', '255.255.255.255:65535', '[::1]:443', '[2001:db8::8a2e:370:7334]:8883', '[::ffff:10.0.0.1]:80']) {
    t.is(rad(ok), 'OK 1', ok);
  }
  for (const bad of [
    '192.168.0.1',
    '192.168.0.1:',
    '192.168.0.256:80',
    '192.168.0:80',
    '192.168.0.01:80',
    '1.2.3.4:65536',
    '1.2.3.4:-1',
    '1.2.3.4:080',
    '1.2.3.4:8o',
    '::1:443',
    '[::1]',
    '[1.2.3.4]:80',
    '[::g]:80',
    'example.com:80',
    ' 1.2.3.4:80',
    '',
    3232235521,
    null,
  ]) {
    t.is(rad(bad), 'InvalidPayload', String(bad));
  }
  t.is(verdict(short((d) => delete d.met.tc.ec.cs[0].rad)), 'InvalidPayload', 'rad is required in a connection');
  t.regex(message(short((d) => (d.met.tc.ec.cs[1].rad = '10.0.0.300:1'))), /met\.tc\.ec\.cs\[1\]\.rad is "10\.0\.0\.300:1": not an IP address/);
});

test('ports: listening ports 1..65535, local ports 0..65535, integers', (t) => {
  const pt = (p: unknown) => verdict(short((d) => (d.met.tp.pts[0].pt = p)));
  const lp = (p: unknown) => verdict(short((d) => (d.met.tc.ec.cs[0].lp = p)));
  t.is(pt(1), 'OK 1');
  t.is(pt(65535), 'OK 1');
  t.is(lp(0), 'OK 1');
  t.is(lp(65535), 'OK 1');
  for (const bad of [0, -1, 65536, 70000, 80.5, '80', null]) t.is(pt(bad), 'InvalidPayload', `pt ${bad}`);
  for (const bad of [-1, 65536, 1.5, '80']) t.is(lp(bad), 'InvalidPayload', `lp ${bad}`);
  t.is(verdict(short((d) => delete d.met.up.pts[1].pt)), 'InvalidPayload', 'pt is required in a port entry');
  t.is(verdict(short((d) => delete d.met.up.pts[1].if)), 'OK 1', 'if is optional');
  t.is(verdict(short((d) => (d.met.up.pts[1].if = 0))), 'InvalidPayload', 'if is a string');
  t.is(verdict(short((d) => (d.met.tc.ec.cs[0].li = ['eth0']))), 'InvalidPayload', 'li is a string');
  t.regex(message(short((d) => (d.met.tp.pts[2].pt = 70000))), /met\.tp\.pts\[2\]\.pt is 70000, out of range 1\.\.65535/);
});

test('counters: non-negative integers', (t) => {
  for (const key of ['bi', 'bo', 'pi', 'po']) {
    t.is(verdict(short((d) => (d.met.ns[key] = 0))), 'OK 1');
    t.is(verdict(short((d) => (d.met.ns[key] = 2 ** 53))), 'OK 1');
    for (const bad of [-1, 1.5, '10', null, Infinity]) t.is(verdict(short((d) => (d.met.ns[key] = bad))), 'InvalidPayload', `${key} ${bad}`);
  }
  t.is(verdict(short((d) => (d.met.ns.bi = 2n ** 63n))), 'InvalidPayload');
  t.is(verdict(short((d) => (d.met.tc.ec.t = -1))), 'InvalidPayload');
  t.is(verdict(short((d) => (d.met.tp.t = -2))), 'InvalidPayload');
  t.regex(message(short((d) => (d.met.ns.bi = -1))), /met\.ns\.bi is -1, out of range 0\.\./);
});

test('lists: lists are lists, of at most 50 entries', (t) => {
  t.is(MAX_LIST, 50);
  const conns = (n: number) => Array.from({ length: n }, (_, i) => ({ rad: `10.0.0.${i % 256}:${1000 + i}` }));
  const ports = (n: number) => Array.from({ length: n }, (_, i) => ({ pt: 1000 + i }));
  t.is(verdict(short((d) => (d.met.tc.ec.cs = conns(50)))), 'OK 1');
  t.is(verdict(short((d) => (d.met.tc.ec.cs = conns(51)))), 'InvalidPayload');
  t.is(verdict(short((d) => (d.met.tp.pts = ports(50)))), 'OK 1');
  t.is(verdict(short((d) => (d.met.tp.pts = ports(51)))), 'InvalidPayload');
  t.is(verdict(short((d) => (d.met.up.pts = ports(51)))), 'InvalidPayload');
  t.regex(message(short((d) => (d.met.up.pts = ports(51)))), /met\.up\.pts has 51 entries, more than 50/);
  t.is(verdict(short((d) => (d.met.tc.ec.cs = { rad: '1.2.3.4:5' }))), 'InvalidPayload', 'a map is not a list');
  t.is(verdict(short((d) => (d.met.tc.ec.cs = [1]))), 'InvalidPayload', 'entries are maps');
  t.is(validateReport(short((d) => (d.met.tc.ec.cs = conns(51))), { maxList: 100 }).reportId, 1, 'the limit is an option');
});

test('custom metrics: a name to a one-entry list of number, number_list, string_list or ip_list', (t) => {
  const cm = (v: unknown) => verdict({ hed: { rid: 1, v: '1.0' }, cmet: v });
  t.is(cm({}), 'OK 1');
  t.is(cm({ temperature: [{ number: -12.25 }], 'a:b_c-D9': [{ number: 0 }] }), 'OK 1');
  t.is(cm({ l: [{ number_list: [] }], s: [{ string_list: [] }], i: [{ ip_list: ['::1', '10.0.0.1'] }] }), 'OK 1');
  const bad: [string, unknown][] = [
    ['bare value (the guide troubleshooting case)', { m: { number: 0 } }],
    ['a number outside a list', { m: 1 }],
    ['empty list', { m: [] }],
    ['two values', { m: [{ number: 1 }, { number: 2 }] }],
    ['two kinds in one value', { m: [{ number: 1, number_list: [1] }] }],
    ['unknown kind', { m: [{ string: 'x' }] }],
    ['short kind name', { m: [{ n: 1 }] }],
    ['an inherited name as kind', { m: [{ toString: 1 }] }],
    ['number as a string', { m: [{ number: '1' }] }],
    ['number null', { m: [{ number: null }] }],
    ['number_list with a string', { m: [{ number_list: [1, '2'] }] }],
    ['number_list not a list', { m: [{ number_list: 1 }] }],
    ['string_list with a number', { m: [{ string_list: ['a', 1] }] }],
    ['ip_list with a hostname', { m: [{ ip_list: ['example.com'] }] }],
    ['ip_list with a port', { m: [{ ip_list: ['10.0.0.1:80'] }] }],
    ['ip_list with a bad octet', { m: [{ ip_list: ['10.0.0.256'] }] }],
    ['list over the limit', { m: [{ number_list: Array.from({ length: 51 }, (_, i) => i) }] }],
    ['name with a space', { 'my metric': [{ number: 1 }] }],
    ['name starting with aws:', { 'aws:cpu': [{ number: 1 }] }],
    ['empty name', { '': [{ number: 1 }] }],
    ['name over 128 characters', { ['m'.repeat(129)]: [{ number: 1 }] }],
    ['custom_metrics a list', [{ m: [{ number: 1 }] }]],
  ];
  for (const [what, v] of bad) t.is(cm(v), 'InvalidPayload', what);
  t.is(cm({ ['m'.repeat(128)]: [{ number: 1 }] }), 'OK 1');
  t.regex(message({ hed: { rid: 1, v: '1.0' }, cmet: { m: { number: 0 } } }), /^Malformed metrics report: cmet\.m is a map, not a list of one value/);
});

test('thing names: 1 to 128 of [a-zA-Z0-9:_-], as AWS IoT takes them', (t) => {
  t.is(thingNameError('dev-1'), undefined);
  t.is(thingNameError('a:b_C-9'), undefined);
  t.is(thingNameError('x'.repeat(128)), undefined);
  t.regex(thingNameError('')!, /Empty thing name/);
  t.truthy(thingNameError('x'.repeat(129)));
  for (const bad of ['bad name é', 'é', 'dev.1', 'dev\u00001', 'dev\t1', 'dev\u007f', 'a+b', 'a#']) t.regex(thingNameError(bad)!, /Invalid thing name/, bad);
});

// --- the judge -------------------------------------------------------------------------------------------

function judge(minPeriod = 0, keep?: number) {
  let now = 1_700_000_000_000;
  const j = new Judge({ minPeriod, keep, now: () => now });
  return {
    j,
    tick: (ms: number) => (now += ms),
    /** A report; `variant` changes its payload, not its id (the same payload again is a redelivery). */
    send: (rid: unknown, thing = 'dev-1', format: 'cbor' | 'json' = 'cbor', variant = 0) => j.judge(thing, format, encode(variantOf(shortDoc(rid), variant), format)),
  };
}

function variantOf(doc: any, variant: number): any {
  if (variant) doc.cmet.MyMetricOfType_Number = [{ number: variant }];
  return doc;
}

test('judge: accepted and rejected reports, with the decoded document, remembered per thing', (t) => {
  const { j, send } = judge();
  const a = send(5);
  t.like(a, { reportId: 5, format: 'cbor', verdict: 'ACCEPTED', at: 1_700_000_000_000 });
  t.deepEqual(a.doc, shortDoc(5));
  t.is(a.errorCode, undefined);
  const r = j.judge('dev-1', 'json', Buffer.from('{'));
  t.like(r, { reportId: undefined, format: 'json', doc: undefined, verdict: 'REJECTED', errorCode: 'Malformed' });
  t.like(send(6, 'dev-2', 'json'), { verdict: 'ACCEPTED' });
  t.deepEqual(
    j.reports('dev-1').map((x) => x.verdict),
    ['ACCEPTED', 'REJECTED'],
  );
  t.deepEqual(j.thingNames(), ['dev-1', 'dev-2']);
  t.deepEqual(j.reports('nobody'), []);
});

test('judge: report ids must increase per thing; a rejected report does not count', (t) => {
  const { send } = judge();
  t.is(send(10).verdict, 'ACCEPTED');
  t.like(send(10, 'dev-1', 'cbor', 2), { verdict: 'REJECTED', errorCode: 'InvalidPayload', reportId: 10 });
  t.like(send(9), { verdict: 'REJECTED', errorCode: 'InvalidPayload' });
  t.regex(send(9, 'dev-1', 'cbor', 3).errorMessage!, /report_id 9 is not greater than 10/);
  t.is(send('11').verdict, 'REJECTED');
  t.is(send(11).verdict, 'ACCEPTED', 'the rejected "11" did not move the last id');
  t.is(send(5, 'dev-2').verdict, 'ACCEPTED', 'each thing has its own ids');
  t.is(send(2n ** 60n + 1n, 'dev-3').verdict, 'ACCEPTED');
  t.is(send(2n ** 60n, 'dev-3').verdict, 'REJECTED', 'exact above 2^53 (CBOR)');
  t.is(send(2n ** 53n, 'dev-4', 'json').verdict, 'ACCEPTED');
  t.like(send(2n ** 53n + 1n, 'dev-4', 'json'), { verdict: 'ACCEPTED', exactId: '9007199254740993' }, 'exact above 2^53 (JSON)');
  t.is(send(12, 'dev-1', 'json').verdict, 'ACCEPTED', 'one sequence across both formats');
});

test('judge: throttled under minPeriod after the last accepted report', (t) => {
  const { send, tick } = judge(300);
  t.is(send(1).verdict, 'ACCEPTED');
  tick(299_999);
  const r = send(2);
  t.like(r, { verdict: 'REJECTED', errorCode: 'Throttled', reportId: 2 });
  t.regex(r.errorMessage!, /299\.999 s after the last accepted report, 300 s at least/);
  tick(1);
  t.is(send(2, 'dev-1', 'cbor', 2).verdict, 'ACCEPTED', 'exactly minPeriod later');
  t.is(send(3, 'dev-2').verdict, 'ACCEPTED', 'per thing');
  tick(300_000);
  t.is(send(4).verdict, 'ACCEPTED');
});

test('judge: a throttled report is throttled before its document is looked at; a rejected one is not a period', (t) => {
  const { j, send, tick } = judge(0.5);
  t.is(send(1).verdict, 'ACCEPTED');
  t.is(j.judge('dev-1', 'cbor', encode({ hed: { rid: 2, v: '9.9' }, met: {} }, 'cbor')).errorCode, 'Throttled');
  tick(500);
  t.is(j.judge('dev-1', 'cbor', encode({ hed: { rid: 2, v: '9.8' }, met: {} }, 'cbor')).errorCode, 'InvalidPayload');
  t.is(send(2).verdict, 'ACCEPTED', 'right after a rejected report');
});

test('judge: a bad thing name is rejected and leaves nothing behind', (t) => {
  const { j } = judge();
  t.like(j.judge('x'.repeat(129), 'json', encode(longDoc(1), 'json')), { verdict: 'REJECTED', errorCode: 'InvalidPayload', reportId: 1 });
  t.like(j.judge('bad name é', 'json', encode(longDoc(1), 'json')), { verdict: 'REJECTED', errorCode: 'InvalidPayload', errorMessage: 'Invalid thing name: 1 to 128 of a-z A-Z 0-9 : _ -' });
  t.like(j.judge('', 'cbor', encode(shortDoc(1), 'cbor')), { verdict: 'REJECTED', errorCode: 'InvalidPayload', errorMessage: 'Empty thing name' });
  t.like(j.judge('', 'cbor', new Uint8Array([0xff])), { verdict: 'REJECTED', errorCode: 'InvalidPayload', errorMessage: 'Empty thing name' });
  t.deepEqual(j.thingNames(), []);
  t.deepEqual(j.reports(''), []);
});

test('judge: a redelivery (same thing, id and payload) gets its first answer; a new payload under a used id is rejected', (t) => {
  const { send, tick } = judge(1);
  const first = send(1);
  tick(10);
  t.deepEqual(send(1), { ...first, doc: undefined, redelivery: true }, 'ACCEPTED again, same timestamp, not throttled');
  t.like(send(1, 'dev-1', 'cbor', 2), { verdict: 'REJECTED', errorCode: 'Throttled' });
  tick(1000);
  const other = send(1, 'dev-1', 'cbor', 3);
  t.like(other, { verdict: 'REJECTED', errorCode: 'InvalidPayload', redelivery: undefined });
  t.like(send(1, 'dev-1', 'cbor', 3), { verdict: 'REJECTED', errorMessage: other.errorMessage, at: other.at, redelivery: true }, 'a rejection is repeated too');
  t.like(send(1, 'dev-2'), { verdict: 'ACCEPTED', redelivery: undefined }, 'per thing');
});

test('judge: documents are kept for the `keep` most recent reports of all things, 20 by default', (t) => {
  const { j, send } = judge();
  for (let i = 1; i <= 15; i++) send(i, 'dev-1');
  for (let i = 1; i <= 10; i++) send(i, 'dev-2');
  t.deepEqual(
    j.reports('dev-1').map((r) => r.reportId),
    [6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
  );
  t.is(j.reports('dev-2').length, 10);
  t.deepEqual(j.reports('dev-2')[9].doc, shortDoc(10));
  const small = judge(0, 3);
  for (let i = 1; i <= 5; i++) small.send(i);
  t.deepEqual(
    small.j.reports('dev-1').map((r) => r.reportId),
    [3, 4, 5],
  );
  t.throws(() => new Judge({ minPeriod: -1 }));
  t.throws(() => new Judge({ keep: -1 }));
  t.throws(() => new Judge({ maxThings: 0 }));
});

test('judge: at most maxThings things, the one silent longest forgotten first', (t) => {
  const evicted: string[] = [];
  const j = new Judge({ minPeriod: 0, maxThings: 3, onEvict: (x) => evicted.push(x) });
  const send = (thing: string, rid: number) => j.judge(thing, 'cbor', encode(shortDoc(rid), 'cbor'));
  send('a', 1);
  send('b', 1);
  send('c', 1);
  send('a', 2);
  send('d', 1);
  t.deepEqual(j.thingNames(), ['c', 'a', 'd']);
  t.deepEqual(evicted, ['b']);
  t.is(send('a', 2).redelivery, true, 'a held thing keeps its answers');
});

test('responses: AWS field names, in the report format', (t) => {
  const { send, j } = judge();
  const a = send(7);
  t.deepEqual(responseBody('dev-1', a), { thingName: 'dev-1', reportId: 7, status: 'ACCEPTED', timestamp: a.at });
  const r = send(7, 'dev-1', 'cbor', 2);
  t.deepEqual(responseBody('dev-1', r), {
    thingName: 'dev-1',
    reportId: 7,
    status: 'REJECTED',
    statusDetails: { ErrorCode: 'InvalidPayload', ErrorMessage: r.errorMessage },
    timestamp: r.at,
  });
  const m = j.judge('dev-1', 'cbor', new Uint8Array([0xff]));
  t.false('reportId' in responseBody('dev-1', m), 'no report id when there is none to read');
  t.deepEqual(cborg.decode(encodeResponse(responseBody('dev-1', a), 'cbor')), responseBody('dev-1', a));
  t.deepEqual(JSON.parse(encodeResponse(responseBody('dev-1', r), 'json').toString()), responseBody('dev-1', r));
});
