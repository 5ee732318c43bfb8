// Fuzz: random and mutated byte streams, split at random points, into build/tinymqtt.js's parser.
// No exception may escape a socket callback, and the client never waits for a packet longer than
// max_packet (or with a malformed length): the connection ends as soon as such a header has arrived (which is
// what bounds its receive buffer by max_packet plus one data event; the buffer itself is not visible here).
import test from 'ava';
import fc from 'fast-check';
import { loadTinymqtt, MockTransport, gen } from './helpers.ts';
import { espruinoClock } from '../helpers/clock.ts';

const MAX = 512;
const valid = [
  gen({ cmd: 'publish', topic: 'a/b', payload: Buffer.from('hello'), qos: 0 }),
  gen({ cmd: 'publish', topic: 'q', payload: Buffer.alloc(200, 3), qos: 1, messageId: 9 }),
  gen({ cmd: 'puback', messageId: 1 }),
  gen({ cmd: 'suback', messageId: 2, granted: [1] }),
  gen({ cmd: 'suback', messageId: 3, granted: [0x80] }),
  gen({ cmd: 'unsuback', messageId: 4 }),
  gen({ cmd: 'pingresp' }),
];

/** Offset at which the header of the first packet over MAX bytes, or with a fifth length byte, is
 * complete (Infinity if none): by then the client must have dropped the connection. */
function firstBadHeaderEnd(b: Buffer): number {
  let at = 0;
  while (at + 1 < b.length) {
    let n = 0;
    let i = at + 1;
    for (let mul = 1; ; mul *= 128) {
      if (i - at > 4) return i + 1;
      if (i >= b.length) return Infinity;
      const x = b[i++];
      n += (x & 127) * mul;
      if (!(x & 128)) break;
    }
    if (i - at + n > MAX) return i;
    at = i + n;
  }
  return Infinity;
}

const chunked = (bytes: fc.Arbitrary<Uint8Array>) =>
  fc.tuple(bytes, fc.array(fc.nat(), { maxLength: 8 })).map(([b, cuts]) => {
    const at = [...new Set(cuts.map((c) => c % (b.length + 1)))].sort((x, y) => x - y);
    const out: Buffer[] = [];
    let from = 0;
    for (const c of [...at, b.length]) {
      out.push(Buffer.from(b.subarray(from, c)));
      from = c;
    }
    return out;
  });

const randomStream = fc.uint8Array({ maxLength: 2048 });
const mutatedStream = fc
  .tuple(fc.array(fc.constantFrom(...valid), { minLength: 1, maxLength: 8 }), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }))
  .map(([packets, flips]) => {
    const b = Buffer.concat(packets);
    for (const [at, v] of flips) b[at % b.length] = v;
    return new Uint8Array(b);
  });

test('10,000 random and mutated streams: nothing throws; a header over max_packet or with a fifth length byte ends the connection as soon as it has arrived', (t) => {
  const clock = espruinoClock();
  const tm = loadTinymqtt({ clock });
  let runs = 0;
  let protocolErrors = 0;
  let messages = 0;
  fc.assert(
    fc.property(fc.oneof(chunked(randomStream), chunked(mutatedStream)), (chunks) => {
      runs++;
      const transport = new MockTransport();
      const c = tm.create('h', { transport, max_packet: MAX, reconnect: false });
      c.on('error', (e: Error) => {
        if (/^protocol error/.test(e.message)) protocolErrors++;
      });
      c.on('message', () => messages++);
      let down = false;
      c.on('disconnected', () => (down = true));
      c.connect();
      const s = transport.last;
      s.emit('open');
      s.feed({ cmd: 'connack', returnCode: 0 });
      const bad = firstBadHeaderEnd(Buffer.concat(chunks));
      let fed = 0;
      for (const chunk of chunks) {
        s.emit('data', chunk);
        fed += chunk.length;
        if (fed >= bad && !down) return false;
      }
      c.disconnect();
      return true;
    }),
    { numRuns: 10_000, seed: 20261125 },
  );
  t.is(runs, 10_000);
  t.true(protocolErrors > 1000, `protocol errors seen: ${protocolErrors}`);
  t.true(messages > 1000, `messages delivered: ${messages}`);
});
