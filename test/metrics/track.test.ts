// track(): lifecycle of tracked sockets against the ring, on the TypeScript sources and on build/defender.js.
import test from 'ava';
import { createServer, connect as netConnect } from 'node:net';
import * as net from 'node:net';
import v8 from 'node:v8';
import vm from 'node:vm';
import * as src from '../../src/defender/index.ts';
import { loadBundle } from './bundle.ts';
import { mockNet, mockDgram, snapshot, connections, total, MockSocket } from './helpers.ts';

const impls: [string, any][] = [['src', src], ['bundle', loadBundle()]];
const tick = () => new Promise((r) => setTimeout(r, 1));

for (const [name, d] of impls) {
  const t1 = (title: string, fn: (t: any) => any) => test.serial(`${name}: ${title}`, fn);

  t1('connect, data, write, close: slot taken and released, counters as deltas', (t) => {
    snapshot(d);
    const n = mockNet();
    const tn = d.track(n);
    const s = tn.connect({ host: '10.1.2.3', port: 8883 });
    t.is(n.sockets[0], s, 'the real socket is returned for an IP address');
    t.is(total(d), 0, 'connecting is not established');
    s.emit('connect');
    s.write('héllo');
    s.write(Buffer.alloc(10));
    s.emit('data', Buffer.alloc(7));
    t.deepEqual(n.sockets[0].written.length, 2);
    const r = snapshot(d);
    t.deepEqual(r.metrics.tcp_connections.established_connections, { total: 1, connections: [{ remote_addr: '10.1.2.3:8883' }] });
    t.deepEqual(r.metrics.network_stats, { bytes_in: 7, bytes_out: 16, packets_in: 1, packets_out: 2 });
    t.deepEqual(snapshot(d).metrics.network_stats, { bytes_in: 0, bytes_out: 0, packets_in: 0, packets_out: 0 });
    s.emit('close', false);
    t.is(total(d), 0);
    t.deepEqual(connections(d), []);
  });

  t1('Espruino-like objects: native write/listen/close/send not on the prototype, connect callback after our listener', (t) => {
    snapshot(d);
    // Espruino's Object.getPrototypeOf(socket) does not hold its native methods: give them as own properties
    const own = (o: any, names: string[]) => {
      for (const k of names) {
        const f = o[k];
        Object.defineProperty(o, k, { value: f, writable: true, enumerable: true, configurable: true });
      }
      Object.setPrototypeOf(o, Object.getPrototypeOf(Object.getPrototypeOf(o)));
      return o;
    };
    const order: string[] = [];
    const n = {
      connect: (opts: any, cb?: any) => {
        t.is(cb, undefined, 'no connect callback reaches the platform');
        const s: any = own(new MockSocket(), ['write', 'end']);
        s.opts = opts;
        return s;
      },
      createServer: () => own(new (class extends (mockNet().createServer().constructor as any) {})(), ['listen', 'close']),
    };
    const tn = d.track(n);
    const s = tn.connect({ host: '10.9.8.7', port: 1 }, () => order.push('app sees ' + total(d)));
    s.emit('connect');
    t.deepEqual(order, ['app sees 1'], 'established in the ring before the application callback runs');
    s.write('abc');
    t.deepEqual(s.written, ['abc']);
    const srv = tn.createServer();
    srv.listen(4242);
    t.deepEqual(snapshot(d).metrics.listening_tcp_ports, { total: 1, ports: [{ port: 4242 }] });
    srv.close();
    t.deepEqual(snapshot(d).metrics.listening_tcp_ports, { total: 0, ports: [] });
    s.emit('close', false);
  });

  t1('tracking a tracked module returns it: one slot and one count per connection', (t) => {
    snapshot(d);
    const tn = d.track(mockNet());
    t.is(d.track(tn), tn);
    const s = d.track(tn).connect({ host: '10.0.0.1', port: 2 });
    s.emit('connect');
    s.write('xy');
    const r = snapshot(d);
    t.is(r.metrics.tcp_connections.established_connections.total, 1);
    t.like(r.metrics.network_stats, { bytes_out: 2, packets_out: 1 });
    s.emit('close', false);
  });

  // both platforms end every socket's life with close (after end, or error; Espruino after a failed TLS
  // handshake too): that is where the slot is released, once
  const orders = [
    ['close'], ['close', 'close'], ['end', 'close'], ['error', 'close'],
    ['connect', 'end', 'close'], ['connect', 'close', 'end'], ['connect', 'error', 'close'], ['connect', 'close', 'error'],
    ['connect', 'end', 'error', 'close', 'close'], ['connect', 'close', 'close'],
  ];
  for (const order of orders) {
    t1(`lifecycle ${order.join(' → ')} releases exactly once`, (t) => {
      const n = mockNet();
      const tn = d.track(n);
      const keep = tn.connect({ host: '10.0.0.1', port: 1 });
      keep.emit('connect');
      // an application listens for errors (tracking adds no error listener: an unhandled one throws, as untracked)
      const s = tn.connect({ host: '10.0.0.2', port: 2 }).on('error', () => {});
      for (const ev of order) s.emit(ev, ev === 'error' ? new Error('x') : ev === 'close' ? false : undefined);
      t.is(total(d), 1);
      // every other slot is free: 7 more fit in the 8-slot ring
      const more = [];
      for (let i = 0; i < 7; i++) {
        more.push(tn.connect({ host: '10.0.1.' + i, port: 3 }));
        more[i].emit('connect');
      }
      const info = [0, 0];
      t.is(snapshot(d, 0x1ff, info).metrics.tcp_connections.established_connections.connections.length, 8);
      t.is(info[1], 0, 'no slot overflow');
      for (const m of [keep, ...more]) m.emit('close', false);
      t.is(total(d), 0);
    });
  }

  t1('more connections than slots: exact total, overflow counted, unslotted stay unlisted', (t) => {
    const tn = d.track(mockNet());
    const ss = [];
    for (let i = 0; i < 10; i++) {
      ss.push(tn.connect({ host: '192.168.0.' + (i + 1), port: 80 }));
      ss[i].emit('connect');
    }
    const info = [0, 0];
    const r = snapshot(d, 0x1ff, info);
    t.is(r.metrics.tcp_connections.established_connections.total, 10);
    t.is(r.metrics.tcp_connections.established_connections.connections.length, 8);
    t.is(info[1], 2);
    snapshot(d, 0x1ff, info);
    t.is(info[1], 0, 'overflow count is per report');
    ss[0].emit('close', false);
    ss[9].emit('close', false);
    t.is(total(d), 8);
    t.is(connections(d).length, 7);
    for (const s of ss) s.emit('close', false);
    t.is(total(d), 0);
  });

  t1('hostname: resolved first, stand-in socket forwards events, queued writes flushed', async (t) => {
    const n = mockNet();
    const tn = d.track(n, (host: string, cb: (ip?: string) => void) => setTimeout(() => cb(host === 'broker.local' ? '172.16.0.9' : undefined), 1));
    let connected = 0;
    const s = tn.connect({ host: 'broker.local', port: 8883 }, () => connected++);
    t.is(n.sockets.length, 0, 'nothing connects before the lookup');
    s.write('early');
    const got: any[] = [];
    s.on('data', (x: any) => got.push(x));
    await tick();
    await tick();
    t.is(n.sockets.length, 1);
    const real = n.sockets[0];
    t.is(real.opts.host, '172.16.0.9');
    t.is(real.opts.servername, 'broker.local');
    t.deepEqual(real.written, ['early']);
    real.emit('connect');
    real.emit('data', 'abc');
    t.is(connected, 1);
    t.deepEqual(got, ['abc']);
    t.deepEqual(connections(d), ['172.16.0.9:8883']);
    s.end();
    real.emit('close', false);
    t.is(total(d), 0);

    const bad = tn.connect({ host: 'nowhere.invalid', port: 1 });
    const events: string[] = [];
    bad.on('error', () => events.push('error'));
    bad.on('close', () => events.push('close'));
    await tick();
    await tick();
    t.deepEqual(events, ['error', 'close']);
    t.is(n.sockets.length, 1);
    t.is(total(d), 0);
  });

  t1('server: listening port table, accepted connections with and without an address', (t) => {
    const tn = d.track(mockNet());
    const seen: any[] = [];
    const srv = tn.createServer((s: any) => seen.push(s));
    srv.listen(8080);
    const a = srv.accept('::ffff:192.168.1.9', 50000);
    const b = srv.accept(undefined, undefined);
    t.is(seen.length, 2);
    const r = snapshot(d, 0x1ff);
    t.deepEqual(r.metrics.listening_tcp_ports, { ports: [{ port: 8080 }], total: 1 });
    t.deepEqual(r.metrics.tcp_connections.established_connections, {
      total: 2,
      connections: [{ local_port: 8080, remote_addr: '192.168.1.9:50000' }],
    });
    a.emit('close', false);
    b.emit('end');
    b.emit('close', false); // both platforms emit close after end
    srv.close();
    srv.close();
    const r2 = snapshot(d, 0x1ff);
    t.deepEqual(r2.metrics.listening_tcp_ports, { ports: [], total: 0 });
    t.is(r2.metrics.tcp_connections.established_connections.total, 0);
  });

  t1('dgram: bind/close in the UDP table, send and message counted', (t) => {
    snapshot(d);
    const ud = d.track(mockDgram);
    const u = ud.createSocket('udp4');
    u.bind(5353);
    u.send('12345');
    u.emit('message', Buffer.alloc(3), {});
    const r = snapshot(d, 0x1ff);
    t.deepEqual(r.metrics.listening_udp_ports, { ports: [{ port: 5353 }], total: 1 });
    t.deepEqual(r.metrics.network_stats, { bytes_in: 3, bytes_out: 5, packets_in: 1, packets_out: 1 });
    u.close();
    t.deepEqual(snapshot(d, 0x1ff).metrics.listening_udp_ports, { ports: [], total: 0 });
  });

  t1('10,000 open/close cycles leave the ring empty and the tracker holding nothing', async (t) => {
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc');
    const tn = d.track(mockNet(false));
    const refs: WeakRef<object>[] = [];
    const enders = ['close', 'end', 'error'];
    for (let i = 0; i < 10000; i++) {
      const s: MockSocket = tn.connect({ host: '10.9.' + ((i >> 8) & 255) + '.' + (i & 255), port: 1 + (i % 60000) });
      s.on('error', () => {});
      if (i % 3) s.emit('connect');
      s.write('x');
      s.emit(enders[i % 3], i % 3 === 2 ? new Error('e') : i % 3 === 0 ? true : undefined);
      s.emit('close', false);
      if (i % 1000 === 0) refs.push(new WeakRef(s));
    }
    t.is(total(d), 0);
    t.deepEqual(connections(d), []);
    const info = [0, 0];
    snapshot(d, 0x1ff, info);
    t.is(info[1], 0);
    await tick();
    gc();
    t.is(refs.filter((r) => r.deref()).length, 0, 'no socket is kept alive by the tracker');
  });

  t1('real Node sockets: tracked net client and server on loopback', async (t) => {
    snapshot(d);
    const tn = d.track(net);
    const srv = tn.createServer((s: any) => s.on('data', (x: Buffer) => s.write(x)));
    srv.listen(0, '127.0.0.1');
    await new Promise((r) => srv.once('listening', r));
    const port = srv.address().port;
    const c = tn.connect({ host: '127.0.0.1', port });
    await new Promise((r) => c.once('connect', r));
    c.write('ping');
    await new Promise((r) => c.once('data', r));
    const r = snapshot(d, 0x1ff);
    t.is(r.metrics.tcp_connections.established_connections.total, 2);
    const addrs = r.metrics.tcp_connections.established_connections.connections.map((x: any) => x.remote_addr);
    t.true(addrs.includes('127.0.0.1:' + port));
    t.true(r.metrics.network_stats.packets_out >= 2);
    t.deepEqual(r.metrics.listening_tcp_ports.ports, [{ port }]);
    c.end();
    await new Promise((r) => c.once('close', r));
    await new Promise((r) => setTimeout(r, 20));
    srv.close();
    t.is(total(d), 0);
    t.is(snapshot(d, 0x1ff).metrics.listening_tcp_ports.total, 0);
  });
}

test.serial('bundle: hostname through the default resolver (dns.lookup on Node)', async (t) => {
  const d = impls[1][1];
  const srv = createServer((s) => s.end());
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as any).port;
  const c = d.track(net).connect({ host: 'localhost', port });
  await new Promise((r) => c.on('connect', r));
  t.deepEqual(connections(d), ['127.0.0.1:' + port]);
  await new Promise((r) => c.on('close', r));
  srv.close();
  t.is(total(d), 0);
  void netConnect;
});
