// Custom metrics: the device's writer and the service's validator refuse exactly the same metrics (one list of
// rules, src/common/spec.ts), on random names and values; what the writer takes, the service accepts.
import test from 'ava';
import fc from 'fast-check';
import * as cborg from 'cborg';
import { isIP } from 'node:net';
import { loadBundle } from './bundle.ts';
import { validateReport, decodeReport } from '../../service/validate.ts';

const d = loadBundle();

const name = fc.oneof(
  fc.stringMatching(/^[a-zA-Z0-9:_-]{1,12}$/),
  fc.constantFrom('', 'aws:cpu', 'aws:', 'awsx', 'a b', 'é', 'x'.repeat(128), 'x'.repeat(129), 'a\u0000', 'ünicode'),
  fc.string({ maxLength: 6 }),
).filter((n) => n !== '__proto__');
const number = fc.oneof(fc.double(), fc.integer(), fc.constantFrom(NaN, Infinity, -Infinity, 2 ** 60, -0), fc.constantFrom('1', null, true) as fc.Arbitrary<any>);
const text = fc.oneof(fc.string({ unit: 'grapheme', maxLength: 5 }), fc.string({ unit: 'binary', maxLength: 5 }), fc.constantFrom('a\ud800', '\udc00b', 7 as any));
const ip = fc.oneof(fc.ipV4(), fc.ipV6(), fc.ipV4Extended(), fc.constantFrom('10.0.0.01', '1::2::3', 'example.com', 'fe80::1%eth0', '::ffff:1.2.3.4', '', '1.2.3.4:80'), fc.string({ maxLength: 8 }));
const list = <T>(item: fc.Arbitrary<T>) => fc.array(item, { maxLength: 3 }).chain((l) => fc.oneof(fc.constant(l), fc.constant([...l, ...Array(50).fill(l[0] ?? 1)])));
const value = fc.oneof(
  number.map((n) => ({ number: n })),
  list(number).map((l) => ({ number_list: l })),
  list(text).map((l) => ({ string_list: l })),
  list(ip).map((l) => ({ ip_list: l })),
  fc.constantFrom({}, { number: 1, number_list: [1] }, { other: 1 }, 5, null, 'x', [1]) as fc.Arbitrary<any>,
);

function serviceTakes(doc: unknown): boolean {
  try {
    validateReport(doc);
    return true;
  } catch {
    return false;
  }
}

test('the writer refuses a custom metric exactly when the service does; what it writes, the service accepts', (t) => {
  const buf = new Uint8Array(8192);
  fc.assert(
    fc.property(name, value, fc.boolean(), (n, v, json) => {
      const len = d.writeReport(buf, json, false, 0x200, 1, { [n]: v });
      // the service judges the metric as sent: name -> [value]
      const takes = serviceTakes({ hed: { rid: 1, v: '1.0' }, cmet: { [n]: [v] } });
      t.is(len === -3, !takes, `${JSON.stringify(n)}: ${JSON.stringify(v)}`);
      if (len > 0) t.true(serviceTakes(decodeReport(buf.slice(0, len), json ? 'json' : 'cbor')));
      return true;
    }),
    { numRuns: 2000 },
  );
});

test('IP addresses: as node:net isIP takes them, but no IPv6 zone', (t) => {
  const candidates = fc.oneof(fc.ipV4(), fc.ipV6(), fc.ipV4Extended(), fc.string({ maxLength: 12 }), fc.stringMatching(/^[0-9a-f:.]{1,20}$/));
  fc.assert(
    fc.property(candidates, (s) => {
      const ours = d.writeReport(new Uint8Array(512), false, false, 0x200, 1, { m: { ip_list: [s] } }) > 0;
      t.is(ours, isIP(s) !== 0 && !s.includes('%'), s);
      return true;
    }),
    { numRuns: 3000 },
  );
});

test('a CBOR integer beyond 2^53: taken when a Double holds it exactly', (t) => {
  const doc = (n: bigint) => decodeReport(cborg.encode({ hed: { rid: 1, v: '1.0' }, cmet: { m: [{ number: n }] } }), 'cbor');
  t.true(serviceTakes(doc(2n ** 60n)));
  t.false(serviceTakes(doc(2n ** 53n + 1n)));
});
