import test from 'ava';
import fc from 'fast-check';
import { utf8Encode, utf8Length, utf8Write } from '../src/common/utf8.ts';

test('utf8 matches Node for any string, lone surrogates included', (t) => {
  fc.assert(
    fc.property(fc.string({ unit: 'binary' }), (s) => {
      const expected = Buffer.from(s, 'utf8');
      const buf = new Uint8Array(utf8Length(s));
      if (utf8Write(s, buf, 0) !== expected.length) return false;
      return Buffer.from(buf).equals(expected) && Buffer.from(utf8Encode(s), 'latin1').equals(expected);
    }),
  );
  t.is(utf8Length('é€😀'), 2 + 3 + 4);
});
