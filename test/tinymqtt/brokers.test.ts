// build/tinymqtt.js against real brokers on loopback: mosquitto (Debian) over plain TCP and over TLS that
// requires a client certificate, and aedes (npm) in process. The npm `mqtt` client is the peer on the other
// side, so every byte is checked by a second implementation.
import test from 'ava';
import net from 'node:net';
import tls from 'node:tls';
import { Aedes } from 'aedes';
import mqtt from 'mqtt';
import { loadTinymqtt } from './helpers.ts';
import { startMosquitto } from '../helpers/mosquitto.ts';
import { makePki, type Pki } from '../helpers/certs.ts';
import { freePort } from '../helpers/net.ts';
import { until } from '../helpers/until.ts';

const tm = loadTinymqtt();

interface Broker {
  name: string;
  url: string;
  peerOptions: mqtt.IClientOptions;
  clientOptions: any;
  stop(): Promise<void>;
}

let pki: Pki;
const brokers: Record<string, () => Promise<Broker>> = {
  async 'mosquitto tcp'() {
    const m = await startMosquitto();
    return {
      name: 'mosquitto tcp',
      url: `mqtt://127.0.0.1:${m.port}`,
      peerOptions: {},
      clientOptions: { port: m.port, transport: net },
      stop: () => m.stop(),
    };
  },
  async 'mosquitto tls'() {
    pki ??= makePki();
    const m = await startMosquitto({ tls: pki });
    const tlsOpts = { ca: pki.ca, cert: pki.clientCert, key: pki.clientKey, servername: 'localhost' };
    return {
      name: 'mosquitto tls',
      url: `mqtts://127.0.0.1:${m.port}`,
      peerOptions: tlsOpts,
      clientOptions: { port: m.port, transport: tls, ...tlsOpts },
      stop: () => m.stop(),
    };
  },
  async aedes() {
    const broker = await Aedes.createBroker();
    const server = net.createServer(broker.handle);
    const port = await freePort();
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
    return {
      name: 'aedes',
      url: `mqtt://127.0.0.1:${port}`,
      peerOptions: {},
      clientOptions: { port, transport: net },
      async stop() {
        await new Promise<void>((r) => broker.close(() => r()));
        await new Promise<void>((r) => server.close(() => r()));
      },
    };
  },
};

function client(b: Broker, extra: any = {}) {
  const c = tm.create('127.0.0.1', { client_id: 'tiny-' + Math.random().toString(16).slice(2, 8), ...b.clientOptions, ...extra });
  const messages: { topic: string; message: string }[] = [];
  c.on('message', (m: any) => messages.push(m));
  return { c, messages };
}

const once = (c: any, ev: string) => new Promise<any>((r) => c.once(ev, r));
const cb = (f: (done: (e?: any) => void) => void) => new Promise<any>((res, rej) => f((e?: any, x?: any) => (e ? rej(e) : res(x))));

for (const name of Object.keys(brokers)) {
  test(`${name}: QoS 0 and 1 both ways, binary payloads, 3-byte lengths, retain, unsubscribe`, async (t) => {
    const b = await brokers[name]();
    const { c, messages } = client(b, { max_packet: 65536 });
    const peer = await mqtt.connectAsync(b.url, { ...b.peerOptions, clientId: 'peer-' + process.pid, rejectUnauthorized: true });
    try {
      c.connect();
      await once(c, 'connected');
      t.is(await cb((d) => c.subscribe('to/tiny/#', 1, d)), 1, 'granted QoS 1');
      const fromPeer: { topic: string; payload: Buffer; qos: number }[] = [];
      peer.on('message', (topic, payload, p) => fromPeer.push({ topic, payload, qos: p.qos }));
      await peer.subscribeAsync('from/tiny/#', { qos: 1 });

      const every = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
      const big = Buffer.alloc(40_000, 0x5a); // remaining length in 3 bytes
      await cb((d) => c.publish('from/tiny/q1', every, 1, d));
      await cb((d) => c.publish('from/tiny/q0', 'plain', 0, d));
      await cb((d) => c.publish('from/tiny/big', new Uint8Array(big), 1, d));
      await until(() => fromPeer.length === 3);
      const byTopic = Object.fromEntries(fromPeer.map((m) => [m.topic, m]));
      t.deepEqual(byTopic['from/tiny/q1'].payload, every);
      t.is(byTopic['from/tiny/q1'].qos, 1);
      t.deepEqual(byTopic['from/tiny/q0'].payload, Buffer.from('plain'));
      t.deepEqual(byTopic['from/tiny/big'].payload, big);

      await peer.publishAsync('to/tiny/a', every, { qos: 1 });
      await peer.publishAsync('to/tiny/b', big, { qos: 0 });
      await until(() => messages.length === 2);
      t.deepEqual(Buffer.from(messages[0].message, 'latin1'), every);
      t.is(messages[1].message.length, big.length);

      await cb((d) => c.publish('from/tiny/retained', 'kept', { qos: 1, retain: true }, d));
      const late = await mqtt.connectAsync(b.url, { ...b.peerOptions, clientId: 'late-' + process.pid });
      const got = new Promise<any>((r) => late.once('message', (topic, payload, p) => r({ topic, payload: payload.toString(), retain: p.retain })));
      await late.subscribeAsync('from/tiny/retained');
      t.deepEqual(await got, { topic: 'from/tiny/retained', payload: 'kept', retain: true });
      await late.publishAsync('from/tiny/retained', '', { retain: true });
      await late.endAsync();

      await cb((d) => c.unsubscribe('to/tiny/#', d));
      await peer.publishAsync('to/tiny/after', 'x', { qos: 1 });
      await cb((d) => c.publish('to/tiny/own', 'marker', 1, d));
      await new Promise((r) => setTimeout(r, 200));
      t.is(messages.length, 2, 'nothing after the unsubscribe');
    } finally {
      c.disconnect();
      await peer.endAsync();
      await b.stop();
    }
  });
}

test('mosquitto killed and restarted: reconnect, subscriptions restored, a QoS 1 publish made while down delivered', async (t) => {
  const port = await freePort();
  let m = await startMosquitto({ port });
  const url = `mqtt://127.0.0.1:${port}`;
  const c = tm.create('127.0.0.1', { port, transport: net, client_id: 'restart-' + process.pid, reconnect_min: 0.1, reconnect_max: 0.5 });
  const messages: any[] = [];
  const downs: string[] = [];
  c.on('message', (msg: any) => messages.push(msg));
  c.on('disconnected', (why: string) => downs.push(why));
  c.on('error', () => {});
  try {
    c.connect();
    await once(c, 'connected');
    await cb((d) => c.subscribe('back/#', 1, d));
    await m.stop();
    await until(() => downs.length >= 1);
    // published while the broker is down: kept, sent after the reconnect, acknowledged then
    const acked = cb((d) => c.publish('out/queued', 'while down', { qos: 1, retain: true }, d));
    const back = once(c, 'connected');
    m = await startMosquitto({ port });
    await back;
    await acked;
    const peer = await mqtt.connectAsync(url, { clientId: 'peer2-' + process.pid });
    const retained = new Promise<string>((r) => peer.once('message', (_topic, payload) => r(payload.toString())));
    await peer.subscribeAsync('out/queued', { qos: 1 });
    t.is(await retained, 'while down');
    await peer.publishAsync('back/again', 'hello', { qos: 1 });
    await until(() => messages.length === 1);
    t.deepEqual(messages[0], { topic: 'back/again', message: 'hello' }, 'the subscription was restored');
    await peer.endAsync();
  } finally {
    c.disconnect();
    await m.stop();
  }
});

test('mosquitto tls: a wrong CA or no client certificate is a clear error and a retry, never a crash', async (t) => {
  pki ??= makePki();
  const other = makePki();
  const m = await startMosquitto({ tls: pki });
  try {
    for (const [what, opts] of [
      ['wrong CA', { ca: other.ca, cert: pki.clientCert, key: pki.clientKey }],
      ['no client certificate', { ca: pki.ca }],
    ] as const) {
      const c = tm.create('127.0.0.1', { port: m.port, transport: tls, servername: 'localhost', reconnect_min: 0.1, reconnect_max: 0.2, ...opts });
      const errors: string[] = [];
      let downs = 0;
      c.on('error', (e: Error) => errors.push(e.message));
      c.on('disconnected', () => downs++);
      c.connect();
      await until(() => downs >= 2, 10000);
      c.disconnect();
      t.true(errors.length >= 1, what);
      t.log(`${what}: ${errors[0]}`);
      if (what === 'wrong CA') t.regex(errors[0], /certificate/i);
    }
  } finally {
    await m.stop();
  }
});
