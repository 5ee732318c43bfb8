// build/tinymqtt.js on mock sockets with an Espruino-like fake clock: every packet type, checked against
// mqtt-packet (an independent codec); split and coalesced input; CONNACK codes; keep-alive; QoS 1 resends;
// back-off; timer handles; what a user sees when the application's code throws.
import test from 'ava';
import { setup, gen, parse, type MockTransport } from './helpers.ts';
import type { EspruinoClock } from '../helpers/clock.ts';

/** Lets the fake time run until the client opens its next socket. */
function reconnect(transport: MockTransport, clock: EspruinoClock) {
  const n = transport.sockets.length;
  while (transport.sockets.length === n) clock.tick(10);
}

const bytes = (s: any) => Buffer.from(s);

test('CONNECT carries client id, keep-alive, clean session, user name and password', (t) => {
  const { client, transport, accept, named } = setup({ client_id: 'dev-1', keep_alive: 30, username: 'u', password: 'p\u00ff', port: 8883 }, { connected: false });
  client.connect();
  const s = transport.last;
  t.is(s.opts.host, 'broker.test');
  t.is(s.opts.port, 8883);
  t.deepEqual(s.packets(), [], 'nothing before the transport connects');
  s.emit('open');
  const [p] = s.packets();
  t.like(p, { cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clientId: 'dev-1', keepalive: 30, clean: true, username: 'u' });
  t.deepEqual(p.password, Buffer.from([0x70, 0xff]), 'password bytes as given');
  accept();
  t.is(named('connected').length, 1);
});

test('CONNECT defaults: port 1883, keep-alive 60, clean session; clean_session false is sent', (t) => {
  const a = setup({}, { connected: false });
  a.client.connect();
  a.transport.last.emit('open');
  t.is(a.transport.last.opts.port, 1883);
  t.like(a.transport.last.packets()[0], { clientId: '', keepalive: 60, clean: true });
  const b = setup({ client_id: 'x', clean_session: false }, { connected: false });
  b.client.connect();
  b.transport.last.emit('open');
  t.like(b.transport.last.packets()[0], { clean: false });
});

test('TLS options pass through to the transport untouched', (t) => {
  const key = () => 'KEY';
  const { client, transport } = setup({ key, cert: 'CERT', ca: 'CA', servername: 'iot.example' }, { connected: false });
  client.connect();
  const o = transport.last.opts;
  t.is(o.key, key);
  t.is(o.cert, 'CERT');
  t.is(o.ca, 'CA');
  t.is(o.servername, 'iot.example');
});

test('each refused CONNACK code is a clear error, then a reconnect', (t) => {
  const reasons = ['unacceptable protocol version', 'identifier rejected', 'server unavailable', 'bad user name or password', 'not authorized'];
  for (let rc = 1; rc <= 6; rc++) {
    const { client, accept, named, transport, clock } = setup({}, { connected: false });
    client.connect();
    accept(rc);
    const why = rc <= 5 ? reasons[rc - 1] : 'code 6';
    t.deepEqual(named('error'), ['connection refused: ' + why]);
    t.deepEqual(named('disconnected'), ['connection refused: ' + why]);
    t.is(named('connected').length, 0);
    t.true(transport.last.ended);
    clock.tick(1000);
    t.is(transport.sockets.length, 2, 'tried again after the back-off');
  }
});

test('QoS 0 publish: bytes, callback, published event; retain flag', (t) => {
  const { client, transport, named } = setup();
  let called = 0;
  client.publish('a/b', 'hi', 0, () => called++);
  client.publish('a/r', 'kept', { qos: 0, retain: true });
  const [p, r] = transport.last.packets();
  t.like(p, { cmd: 'publish', topic: 'a/b', qos: 0, retain: false, dup: false });
  t.deepEqual(p.payload, bytes('hi'));
  t.like(r, { topic: 'a/r', retain: true });
  t.is(called, 1);
  t.is(named('published').length, 2);
});

test('QoS 1 publish: packet id, callback and published event on the matching PUBACK only', (t) => {
  const { client, transport, named } = setup();
  const done: any[] = [];
  client.publish('t', 'one', 1, (e: any) => done.push(['one', e]));
  client.publish('t', 'two', 1, (e: any) => done.push(['two', e]));
  const [a, b] = transport.last.packets();
  t.like(a, { cmd: 'publish', qos: 1, dup: false });
  t.not(a.messageId, b.messageId);
  transport.last.feed({ cmd: 'puback', messageId: 999 });
  t.deepEqual(done, [], 'an unknown id acknowledges nothing');
  transport.last.feed({ cmd: 'puback', messageId: b.messageId });
  t.deepEqual(done, [['two', undefined]]);
  transport.last.feed({ cmd: 'puback', messageId: a.messageId });
  t.deepEqual(done, [['two', undefined], ['one', undefined]]);
  t.is(named('published').length, 2);
});

test('QoS 1: resent with DUP after the timeout, then given up with an error after `retries`', (t) => {
  const { client, transport, clock, named } = setup({ timeout: 5, retries: 2, keep_alive: 0 });
  let err: any;
  client.publish('t', 'x', 1, (e: any) => (err = e));
  const s = transport.last;
  const id = s.packets()[0].messageId;
  clock.tick(4999);
  t.is(s.packets().length, 1);
  clock.tick(1);
  t.like(s.packets()[1], { cmd: 'publish', dup: true, messageId: id, qos: 1 });
  clock.tick(5000);
  t.is(s.packets().length, 3);
  t.is(err, undefined);
  clock.tick(5000);
  t.is(s.packets().length, 3, 'no third resend');
  t.regex(err?.message, /no acknowledgement after 3 tries/);
  const published = named('published').length;
  err = 'not called again';
  s.feed({ cmd: 'puback', messageId: id });
  t.is(err, 'not called again', 'a late PUBACK calls nothing');
  t.is(named('published').length, published, 'nor says published');
  t.deepEqual(named('error'), []);
  t.deepEqual(named('disconnected'), [], 'and the connection stays');
});

test('QoS 1: in flight at a disconnect, resent with DUP after the reconnect; published while down, sent then without DUP', (t) => {
  const { client, transport, clock, accept } = setup();
  client.publish('t', 'before', 1);
  const id = transport.last.packets()[0].messageId;
  transport.last.drop();
  client.publish('t', 'while down', 1);
  t.is(transport.last.packets().length, 1, 'nothing written to a closed socket');
  clock.tick(1000);
  accept();
  const ps = transport.last.packets().filter((p) => p.cmd === 'publish');
  t.is(ps.length, 2);
  t.like(ps[0], { messageId: id, dup: true });
  t.deepEqual(ps[0].payload, bytes('before'));
  t.like(ps[1], { dup: false });
  t.deepEqual(ps[1].payload, bytes('while down'));
});

test('QoS 0 while disconnected, an unsupported QoS, and too many in flight are refused with an error', (t) => {
  const { client, transport } = setup({ max_inflight: 2 });
  const errs: string[] = [];
  const cb = (e: any) => errs.push(e?.message);
  client.publish('t', 'a', 1, cb);
  client.publish('t', 'b', 1, cb);
  client.publish('t', 'c', 1, cb);
  client.publish('t', 'd', 2, cb);
  t.deepEqual(errs, ['too many in flight', 'QoS 2 not supported'], 'the first two wait for their PUBACK');
  t.is(transport.last.packets().length, 2);
  transport.last.drop();
  client.publish('t', 'e', 0, cb);
  t.is(errs.at(-1), 'not connected');
});

test('publish refuses a topic with + or #, an empty one, or one over 65535 bytes, and sends nothing', (t) => {
  const { client, transport, named } = setup();
  const errs: string[] = [];
  for (const topic of ['a/+', 'a/#', '#', '', 'x'.repeat(65536), 42]) client.publish(topic, 'm', 1, (e: any) => errs.push(e?.message));
  client.publish('a/+/b', 'no callback');
  t.is(errs.length, 6);
  for (const e of errs) t.regex(e, /^invalid topic/);
  t.regex(named('error')[0], /^invalid topic/, 'without a callback: the error event');
  t.deepEqual(transport.last.packets(), []);
  client.publish('x'.repeat(65535), 'm', 0);
  t.is(transport.last.packets()[0].topic.length, 65535, 'exactly 65535 is fine');
});

test('incoming PUBLISH QoS 0 and 1: message event, PUBACK for QoS 1, binary payload intact', (t) => {
  const { transport, named } = setup();
  const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
  transport.last.feed({ cmd: 'publish', topic: 'in/0', payload: all, qos: 0 });
  transport.last.feed({ cmd: 'publish', topic: 'in/1', payload: Buffer.from('q1'), qos: 1, messageId: 77 });
  const m = named('message');
  t.is(m[0].topic, 'in/0');
  t.deepEqual(Buffer.from(m[0].message, 'latin1'), all, 'a byte string of every byte value');
  t.deepEqual(m[1], { topic: 'in/1', message: 'q1' });
  t.deepEqual(transport.last.packets().map((p) => [p.cmd, p.messageId]), [['puback', 77]]);
});

test('Uint8Array, Buffer and subarray payloads are sent as their bytes', (t) => {
  const { client, transport } = setup();
  const buf = new Uint8Array([9, 0, 255, 128, 7]);
  client.publish('t', buf.subarray(1, 4), 0);
  client.publish('t', Buffer.from([1, 2]), 0);
  client.publish('t', new Uint8Array(0), 0);
  const [a, b, c] = transport.last.packets();
  t.deepEqual(a.payload, Buffer.from([0, 255, 128]));
  t.deepEqual(b.payload, Buffer.from([1, 2]));
  t.is(c.payload.length, 0);
});

test('SUBSCRIBE / SUBACK granted, 0x80 refused; UNSUBSCRIBE / UNSUBACK', (t) => {
  const { client, transport } = setup();
  const log: any[] = [];
  client.subscribe('a/#', 1, (e: any, q: any) => log.push(['a', e?.message, q]));
  client.subscribe('b', (e: any) => log.push(['b', e?.message]));
  const [sa, sb] = transport.last.packets();
  t.like(sa, { cmd: 'subscribe', subscriptions: [{ topic: 'a/#', qos: 1 }] });
  t.like(sb, { cmd: 'subscribe', subscriptions: [{ topic: 'b', qos: 0 }] });
  transport.last.feed({ cmd: 'suback', messageId: sa.messageId, granted: [1] });
  transport.last.feed({ cmd: 'suback', messageId: sb.messageId, granted: [0x80] });
  t.deepEqual(log, [['a', undefined, 1], ['b', 'subscription refused: b']]);
  transport.last.clear();
  client.unsubscribe('a/#', () => log.push(['unsub']));
  const [u] = transport.last.packets();
  t.like(u, { cmd: 'unsubscribe', unsubscriptions: ['a/#'] });
  transport.last.feed({ cmd: 'unsuback', messageId: u.messageId });
  t.deepEqual(log.at(-1), ['unsub']);
});

test('subscriptions are restored after a reconnect, unless the server kept the session', (t) => {
  const { client, transport, clock, accept } = setup({ client_id: 'c', clean_session: false });
  client.subscribe('keep/me', 1);
  const [s] = transport.last.packets();
  transport.last.feed({ cmd: 'suback', messageId: s.messageId, granted: [1] });
  client.subscribe('gone', 0);
  transport.last.feed({ cmd: 'suback', messageId: transport.last.packets()[1].messageId, granted: [0] });
  client.unsubscribe('gone');
  transport.last.drop();
  clock.tick(1000);
  accept(0, false);
  const subs = transport.last.packets().filter((p) => p.cmd === 'subscribe');
  t.deepEqual(subs.map((p) => p.subscriptions), [[{ topic: 'keep/me', qos: 1 }]]);
  // the UNSUBSCRIBE still awaiting its UNSUBACK went again too
  t.is(transport.last.packets().filter((p) => p.cmd === 'unsubscribe').length, 1);
  transport.last.feed({ cmd: 'suback', messageId: subs[0].messageId, granted: [1] });
  transport.last.drop();
  clock.tick(2000); // the back-off doubled: the last connection did not stay up 30 s
  accept(0, true);
  t.deepEqual(transport.last.packets().filter((p) => p.cmd === 'subscribe'), [], 'session present: nothing to restore');
});

test('keep-alive: PINGREQ when idle; a silent connection is declared dead within 1.5 keep-alive intervals', (t) => {
  const { transport, clock, named } = setup({ keep_alive: 10 });
  const s = transport.last;
  clock.tick(5000);
  t.deepEqual(s.packets().map((p) => p.cmd), ['pingreq']);
  let silentFrom = 0;
  for (let i = 0; i < 60; i++) {
    // the server answers every PINGREQ
    if (s.packets().length) {
      s.clear();
      s.feed({ cmd: 'pingresp' });
      silentFrom = clock.now;
    }
    clock.tick(1000);
  }
  t.is(named('disconnected').length, 0, 'answered pings keep it alive');
  s.removeAllListeners('open');
  while (named('disconnected').length === 0) {
    // from here on the server says nothing
    if (s.packets().length) s.clear();
    clock.tick(100);
  }
  const dead = clock.now - silentFrom;
  t.deepEqual(named('disconnected'), ['keep-alive timeout']);
  t.true(dead <= 15000, `declared dead after ${dead} ms of silence`);
  t.true(dead >= 10000, `not before a whole interval of silence (${dead} ms)`);
  t.true(s.ended);
});

test('keep-alive: a client that only receives still pings; one that only sends still watches for silence', (t) => {
  const a = setup({ keep_alive: 10 });
  for (let i = 0; i < 40; i++) {
    a.transport.last.feed({ cmd: 'publish', topic: 'in', payload: Buffer.from('x'), qos: 0 });
    a.clock.tick(1000);
  }
  t.true(a.transport.last.packets().filter((p) => p.cmd === 'pingreq').length >= 6, 'pings while only receiving');
  const b = setup({ keep_alive: 10 });
  for (let i = 0; i < 16; i++) {
    b.client.publish('out', 'x', 0);
    b.clock.tick(1000);
  }
  t.deepEqual(b.named('disconnected'), ['keep-alive timeout'], 'sending does not hide a dead server');
});

test('no CONNACK within the timeout: the attempt is given up and retried', (t) => {
  const { client, transport, clock, named } = setup({ timeout: 3 }, { connected: false });
  client.connect();
  transport.last.emit('open');
  clock.tick(3000);
  t.deepEqual(named('disconnected'), ['no CONNACK']);
  clock.tick(1000);
  t.is(transport.sockets.length, 2);
});

test('reconnect back-off: doubles from reconnect_min to reconnect_max, jitter between half and all of it', (t) => {
  let r = 0;
  const { client, transport, clock } = setup({ reconnect_min: 1, reconnect_max: 8, timeout: 100 }, { connected: false, random: () => r });
  client.connect();
  const waits: number[] = [];
  const fail = () => {
    const n = transport.sockets.length;
    transport.last.emit('error', new Error('ECONNREFUSED'));
    const from = clock.now;
    while (transport.sockets.length === n) clock.tick(10);
    waits.push(clock.now - from);
  };
  for (let i = 0; i < 5; i++) fail();
  t.deepEqual(waits, [500, 1000, 2000, 4000, 4000], 'jitter 0: half of 1, 2, 4, 8, 8 s');
  r = 0.999;
  waits.length = 0;
  fail();
  t.true(waits[0] > 7900 && waits[0] <= 8000, `jitter 1: all of the cap (${waits[0]})`);
});

test('back-off: a CONNACK alone does not reset it; a connection that stayed up 30 s does', (t) => {
  const { client, transport, clock, accept } = setup({ reconnect_min: 1, reconnect_max: 60, keep_alive: 0 }, { connected: false, random: () => 0 });
  client.connect();
  const waitAfterDrop = (upFor: number) => {
    accept();
    clock.tick(upFor);
    const n = transport.sockets.length;
    transport.last.drop();
    const from = clock.now;
    while (transport.sockets.length === n) clock.tick(10);
    return clock.now - from;
  };
  // accepted, then dropped at once (a broker closing on a refused publish): the back-off keeps growing
  t.deepEqual([waitAfterDrop(0), waitAfterDrop(0), waitAfterDrop(29_000), waitAfterDrop(0)], [500, 1000, 2000, 4000]);
  t.is(waitAfterDrop(30_000), 500, 'up 30 s: back to reconnect_min');
});

test('disconnect() sends DISCONNECT, closes, and stops reconnecting; connect() again works', (t) => {
  const { client, transport, clock, named, accept } = setup();
  const s = transport.last;
  client.disconnect();
  t.deepEqual(s.packets().map((p) => p.cmd), ['disconnect']);
  t.true(s.ended);
  t.deepEqual(named('disconnected'), ['disconnect()']);
  clock.tick(120_000);
  t.is(transport.sockets.length, 1);
  t.is(clock.countTimers(), 0, 'no timer left');
  client.connect();
  accept();
  t.is(named('connected').length, 2);
});

test('input split into single bytes and coalesced into one chunk parses the same', (t) => {
  const packets = [
    { cmd: 'publish', topic: 'a', payload: Buffer.alloc(300, 7), qos: 1, messageId: 5 },
    { cmd: 'pingresp' },
    { cmd: 'publish', topic: 'b/c', payload: Buffer.from('zz'), qos: 0 },
    { cmd: 'publish', topic: 'big', payload: Buffer.alloc(20000, 1), qos: 0 },
  ];
  const stream = Buffer.concat(packets.map(gen));
  const one = setup({ max_packet: 30000 });
  for (const b of stream) one.transport.last.feed(Buffer.from([b]));
  const all = setup({ max_packet: 30000 });
  all.transport.last.feed(stream);
  for (const c of [one, all]) {
    const m = c.named('message');
    t.deepEqual(m.map((x: any) => [x.topic, x.message.length]), [['a', 300], ['b/c', 2], ['big', 20000]]);
    t.deepEqual(c.transport.last.packets().map((p) => p.cmd), ['puback']);
    t.deepEqual(c.named('error'), []);
  }
});

test('remaining length in all four bytes, both ways', (t) => {
  const { client, transport, named } = setup({ max_packet: 3_000_000 });
  const big = Buffer.alloc(2_097_152, 0xab); // remaining length needs 4 bytes
  client.publish('t', big, 0);
  const out = Buffer.concat(transport.last.out);
  t.deepEqual([...out.subarray(1, 5)].map((b) => b >= 128), [true, true, true, false], '4 length bytes');
  const [p] = parse(out);
  t.deepEqual(p.payload, big);
  transport.last.feed({ cmd: 'publish', topic: 'in', payload: big, qos: 0 });
  t.deepEqual(Buffer.from(named('message')[0].message, 'latin1'), big);
});

test('a malformed or oversized packet ends the connection with a protocol error; nothing throws', (t) => {
  const cases: [string, Buffer][] = [
    ['five remaining-length bytes', Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x01])],
    ['over max_packet', gen({ cmd: 'publish', topic: 't', payload: Buffer.alloc(5000), qos: 0 })],
    ['a second CONNACK', gen({ cmd: 'connack', returnCode: 0 })],
    ['bad flags on PUBACK', Buffer.from([0x41, 2, 0, 1])],
    ['PUBACK of 3 bytes', Buffer.from([0x40, 3, 0, 1, 0])],
    ['QoS 2 PUBLISH', Buffer.from([0x34, 5, 0, 1, 0x74, 0, 1])],
    ['topic longer than the packet', Buffer.from([0x30, 3, 0, 9, 0x74])],
    ['a CONNECT from the server', Buffer.from([0x10, 0])],
    ['PINGRESP with a body', Buffer.from([0xd0, 1, 0])],
  ];
  for (const [what, data] of cases) {
    const { transport, named, client } = setup({ max_packet: 4096 });
    transport.last.feed(data);
    t.regex(named('error')[0] ?? '', /^protocol error: /, what);
    t.deepEqual(named('disconnected'), ['protocol error'], what);
    t.true(transport.last.ended, what);
    client.disconnect();
  }
});

test('a packet before the CONNACK is a protocol error', (t) => {
  const { client, transport, named } = setup({}, { connected: false });
  client.connect();
  transport.last.emit('open');
  transport.last.feed({ cmd: 'pingresp' });
  t.deepEqual(named('disconnected'), ['protocol error']);
});

test('what the application throws becomes an error event; the connection and the protocol go on', (t) => {
  const { client, transport, named, clock } = setup({ timeout: 5 });
  client.on('message', () => {
    throw new Error('app bug');
  });
  transport.last.feed({ cmd: 'publish', topic: 'x', payload: Buffer.from('1'), qos: 1, messageId: 3 });
  t.deepEqual(named('error'), ['app bug']);
  t.deepEqual(named('disconnected'), [], 'the connection stays up');
  t.like(transport.last.packets()[0], { cmd: 'puback', messageId: 3 }, 'the message is still acknowledged');
  let calls = 0;
  client.publish('t', 'x', 1, () => {
    calls++;
    throw new Error('callback bug');
  });
  const id = transport.last.packets()[1].messageId;
  transport.last.feed({ cmd: 'puback', messageId: id });
  t.is(calls, 1);
  t.deepEqual(named('error'), ['app bug', 'callback bug']);
  t.is(named('published').length, 1, 'the PUBACK was taken');
  clock.tick(20_000);
  t.is(transport.last.packets().filter((p) => p.cmd === 'publish').length, 1, 'nothing resent: the packet was acknowledged');
  t.deepEqual(named('disconnected'), []);
});

test('a transport that throws at connect (Espruino tls with a bad key) is an error and a retry', (t) => {
  const { client, transport, clock, named } = setup({}, { connected: false, random: () => 0 });
  transport.throwOnConnect = new Error('HTTPS init failed');
  client.connect();
  t.deepEqual(named('error'), ['HTTPS init failed']);
  t.deepEqual(named('disconnected'), ['Error: HTTPS init failed']);
  transport.throwOnConnect = null;
  clock.tick(500);
  t.is(transport.sockets.length, 1, 'tried again after the back-off');
  transport.last.emit('open');
  t.is(transport.last.packets()[0]?.cmd, 'connect');
});

test('without an error listener, an error without a callback is dropped (Node emitter), and the client goes on', (t) => {
  const { client, transport, named } = setup();
  client.removeAllListeners('error');
  client.publish('a/#', 'x');
  client.publish('a/b', 'y', 1);
  t.deepEqual(transport.last.packets().map((p) => [p.cmd, p.topic]), [['publish', 'a/b']], 'the refused one sent nothing, the next went');
  t.deepEqual(named('disconnected'), []);
});

test("timer handles are zeroed when their timer fires: a later disconnect() cancels no one else's timer (Espruino reuses ids)", (t) => {
  const { client, transport, clock } = setup({}, { connected: false, random: () => 0 });
  clock.setInterval(() => {}, 100_000); // the application's: id 1
  client.connect(); // the client's interval: id 2
  let shortFired = false;
  clock.setTimeout(() => (shortFired = true), 200); // id 3
  transport.last.emit('error', new Error('ECONNRESET')); // the reconnect timeout: id 4
  clock.tick(500); // 3 fired, then 4: the client connects again and its interval takes id 2
  t.true(shortFired);
  t.is(transport.sockets.length, 2);
  let c = 0;
  let d = 0;
  clock.setTimeout(() => c++, 10_000); // id 3
  clock.setTimeout(() => d++, 10_000); // id 4, the reconnect timeout's old id
  client.disconnect();
  clock.tick(10_000);
  t.deepEqual([c, d], [1, 1], "both of the application's timeouts fired");
  t.is(clock.countTimers(), 1, "only the application's interval is left");
});

test('unsubscribe() refused for want of room keeps the subscription (restored after a reconnect)', (t) => {
  const { client, transport, clock, accept } = setup({ max_inflight: 1 });
  client.subscribe('keep/me', 1);
  transport.last.feed({ cmd: 'suback', messageId: transport.last.packets()[0].messageId, granted: [1] });
  client.publish('t', 'x', 1); // takes the one place
  let err: any;
  client.unsubscribe('keep/me', (e: any) => (err = e));
  t.is(err?.message, 'too many in flight');
  t.deepEqual(transport.last.packets().filter((p) => p.cmd === 'unsubscribe'), [], 'nothing sent');
  transport.last.drop();
  clock.tick(1000);
  accept();
  t.deepEqual(
    transport.last.packets().filter((p) => p.cmd === 'subscribe').map((p) => p.subscriptions),
    [[{ topic: 'keep/me', qos: 1 }]],
  );
});

test('QoS 1: a packet resent `retries` times fails across reconnects too, not only within one connection', (t) => {
  const { client, transport, clock, accept, named } = setup({ retries: 2, keep_alive: 0 }, { random: () => 0 });
  const errs: any[] = [];
  client.publish('t', 'refused', 1, (e: any) => errs.push(e?.message));
  const sent = () => transport.sockets.reduce((n, s) => n + s.packets().filter((p) => p.cmd === 'publish').length, 0);
  for (let i = 0; i < 6; i++) {
    transport.last.drop(); // the broker closes on the PUBLISH
    reconnect(transport, clock);
    accept();
  }
  t.is(sent(), 3, 'sent once and resent twice');
  t.deepEqual(errs, ['no acknowledgement after 3 tries']);
  t.is(named('connected').length, 7);
});

test('restored subscriptions: one SUBSCRIBE per topic however often the link drops before the SUBACK, and none counts against max_inflight', (t) => {
  const { client, transport, clock, accept } = setup({ max_inflight: 2 }, { random: () => 0 });
  for (const topic of ['a', 'b']) {
    client.subscribe(topic, 1);
    const p = transport.last.packets().at(-1);
    transport.last.feed({ cmd: 'suback', messageId: p.messageId, granted: [1] });
  }
  for (let i = 0; i < 6; i++) {
    transport.last.drop();
    reconnect(transport, clock);
    accept();
  }
  const subs = transport.last.packets().filter((p) => p.cmd === 'subscribe');
  t.deepEqual(subs.map((p) => p.subscriptions[0].topic).sort(), ['a', 'b']);
  const errs: any[] = [];
  client.publish('t', '1', 1, (e: any) => errs.push(e?.message));
  client.publish('t', '2', 1, (e: any) => errs.push(e?.message));
  t.deepEqual(errs, [], 'both QoS 1 publishes taken');
  t.is(transport.last.packets().filter((p) => p.cmd === 'publish').length, 2);
});

test('an error listener that calls disconnect() on a socket error: one disconnected event, and no reconnect', (t) => {
  const { client, transport, clock, named } = setup();
  client.on('error', () => client.disconnect());
  transport.last.emit('error', new Error('ECONNRESET'));
  t.deepEqual(named('disconnected'), ['disconnect()']);
  clock.tick(120_000);
  t.is(transport.sockets.length, 1);
  t.is(clock.countTimers(), 0);
});
