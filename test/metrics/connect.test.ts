// track() against real Node sockets on loopback, on the TypeScript sources and on build/defender.js: end(data) is
// counted, every connect form of Node's net and tls works through a tracked module, and the stand-in socket a
// hostname gets until it resolves takes the socket's methods, queues them and replays them in order.
import test from 'ava';
import { readFileSync } from 'node:fs';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as src from '../../src/defender/index.ts';
import { loadBundle } from '../../sim/bundle.ts';
import { makePki } from '../helpers/certs.ts';
import { until } from '../helpers/until.ts';
import { snapshot, connections, total } from './helpers.ts';

const impls: [string, any][] = [['src', src], ['bundle', loadBundle('defender')]];
const pki = makePki();
const serverTls = { key: readFileSync(pki.serverKeyFile), cert: readFileSync(pki.serverCertFile) };
const clientTls = { ca: pki.ca, servername: 'localhost' };

type Stats = { bytes_in: number; bytes_out: number; packets_in: number; packets_out: number };
const stats = (d: any): Stats => snapshot(d).metrics.network_stats;
const minus = (a: Stats, b: Stats): Stats => ({
  bytes_in: a.bytes_in - b.bytes_in,
  bytes_out: a.bytes_out - b.bytes_out,
  packets_in: a.packets_in - b.packets_in,
  packets_out: a.packets_out - b.packets_out,
});
/** What fn adds to the network stats, whether a report restarts them or they run on until one is acknowledged. */
async function traffic(d: any, fn: () => Promise<void>): Promise<Stats> {
  const before = stats(d);
  const restarts = stats(d).packets_out === 0; // reading them again shows whether a report restarts them
  await fn();
  return restarts ? stats(d) : minus(stats(d), before);
}

/** A plain Node echo server (untracked) on loopback, or on a Unix socket path. */
async function echoServer(secure = false, path?: string): Promise<{ port: number; path?: string; close: () => Promise<void> }> {
  const onSocket = (s: net.Socket) => s.on('error', () => {}).pipe(s);
  const srv = secure ? tls.createServer(serverTls, onSocket) : net.createServer(onSocket);
  await new Promise<void>((r) => (path ? srv.listen(path, r) : srv.listen(0, '127.0.0.1', r)));
  return { port: path ? 0 : (srv.address() as net.AddressInfo).port, path, close: () => new Promise((r) => srv.close(() => r())) };
}

/** Resolves with what the socket echoes back for `text`, after its connect callback ran; then ends it. */
function echo(s: any, text: string, connected: () => boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    s.on('error', reject);
    s.on('data', (x: Buffer) => {
      got += x;
      if (got.length >= text.length) {
        s.end();
        resolve(got);
      }
    });
    const go = () => (connected() ? s.write(text) : setTimeout(go, 5));
    go();
  });
}

let unixPaths = 0;
const unixPath = () => join(tmpdir(), `track-${process.pid}-${unixPaths++}.sock`);

for (const [name, d] of impls) {
  const t1 = (title: string, fn: (t: any) => any) => test.serial(`${name}: ${title}`, fn);

  t1('end(data) is counted: the README example c.end("hi") and a client that ends with data', async (t) => {
    const tn = d.track(net);
    let serverSide: any;
    const srv = tn.createServer((c: any) => {
      serverSide = c;
      c.on('error', () => {});
      c.end('hi');
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = srv.address().port;
    let got = '';
    const delta = await traffic(d, async () => {
      const c = tn.connect({ host: '127.0.0.1', port }, () => c.end('bye!'));
      c.on('data', (x: Buffer) => (got += x));
      await new Promise((r) => c.on('close', r));
      await until(() => serverSide?.destroyed);
    });
    await new Promise((r) => srv.close(r));
    t.is(got, 'hi');
    t.is(delta.bytes_out, 6, 'the server end("hi") and the client end("bye!")');
    t.is(delta.packets_out, 2);
    t.is(delta.bytes_in, 6, 'what each side received');
    t.is(total(d), 0);
  });

  t1("every form of Node's net.connect through track(): options, port, port and host, path", async (t) => {
    const tn = d.track(net);
    const server = await echoServer();
    const unix = await echoServer(false, unixPath());
    const forms: [string, (cb: () => void) => any][] = [
      ['connect(options, cb)', (cb) => tn.connect({ host: '127.0.0.1', port: server.port }, cb)],
      ['connect(port, host, cb)', (cb) => tn.connect(server.port, '127.0.0.1', cb)],
      ['connect(String(port), host, cb)', (cb) => tn.connect(String(server.port), '127.0.0.1', cb)],
      ['connect(port, cb) (localhost)', (cb) => tn.connect(server.port, cb)],
      ['connect(path, cb)', (cb) => tn.connect(unix.path, cb)],
      ['connect(port, host) then on("connect")', (cb) => tn.connect(server.port, '127.0.0.1').on('connect', cb)],
    ];
    for (const [form, open] of forms) {
      let calls = 0;
      const s = open(() => calls++);
      t.is(typeof s.write, 'function', form);
      const listed = [] as string[];
      const text = await echo(s, 'ping ' + form, () => {
        if (calls && !listed.length) listed.push(...connections(d), 'total ' + total(d));
        return calls > 0;
      });
      t.is(text, 'ping ' + form, form);
      t.is(calls, 1, form + ': callback once');
      t.true(listed.includes('total 1'), form + ': one established connection');
      if (form.includes('127.0.0.1') || form.includes('options')) t.deepEqual(listed, ['127.0.0.1:' + server.port, 'total 1'], form);
      await new Promise((r) => (s.destroyed ? r(0) : s.on('close', r)));
    }
    await server.close();
    await unix.close();
    t.is(total(d), 0);
  });

  t1("every form of Node's tls.connect through track(): the callback once the handshake is done", async (t) => {
    const tt = d.track(tls);
    const server = await echoServer(true);
    const unix = await echoServer(true, unixPath());
    const forms: [string, (cb: () => void) => any][] = [
      ['connect(options, cb)', (cb) => tt.connect({ host: '127.0.0.1', port: server.port, ...clientTls }, cb)],
      ['connect(port, host, options, cb)', (cb) => tt.connect(server.port, '127.0.0.1', clientTls, cb)],
      ['connect(port, options, cb) (localhost)', (cb) => tt.connect(server.port, clientTls, cb)],
      ['connect(path, options, cb)', (cb) => tt.connect(unix.path, clientTls, cb)],
    ];
    for (const [form, open] of forms) {
      let authorized: unknown = 'not called';
      let calls = 0;
      const s = open(() => {
        calls++;
        authorized = s.authorized;
      });
      const text = await echo(s, 'ping ' + form, () => calls > 0);
      t.is(text, 'ping ' + form, form);
      t.is(calls, 1, form);
      t.is(authorized, true, form + ': the callback runs after the handshake');
      await new Promise((r) => (s.destroyed ? r(0) : s.on('close', r)));
    }
    await server.close();
    await unix.close();
    t.is(total(d), 0);
  });

  t1('hostname stand-in: every socket method is taken before the name resolves, queued and replayed in order', async (t) => {
    const server = await echoServer();
    let answer: ((ip?: string) => void) | undefined;
    const tn = d.track(net, (_host: string, cb: (ip?: string) => void) => (answer = cb));
    const seen: string[] = [];
    const f = (what: string) => (x?: any) => seen.push(what + (x === undefined ? '' : ' ' + x));
    const removed = f('removed');
    const s = tn.connect({ host: 'echo.test', port: server.port }, f('callback'));
    t.is(s.setNoDelay(true), s, 'setNoDelay chains');
    t.is(s.setKeepAlive(true, 1000), s);
    t.is(s.setTimeout(0), s);
    t.is(s.on('custom', f('custom')), s);
    t.is(s.emit('custom', 1), true);
    t.is(s.addListener('data', removed), s);
    t.is(s.removeListener('data', removed), s);
    s.once('data', f('once data'));
    s.prependListener('connect', f('prepended connect'));
    s.off('custom', f('never added'));
    t.is(s.write('ping'), true);
    s.pause();
    s.resume();
    s.on('close', f('close'));
    await until(() => answer !== undefined);
    t.deepEqual(seen, [], 'nothing happens before the name resolves');
    answer!('127.0.0.1');
    await until(() => seen.includes('once data ping'), 5000, () => seen.join(', '));
    t.deepEqual(seen, ['custom 1', 'prepended connect', 'callback', 'once data ping']);
    t.deepEqual(connections(d), ['127.0.0.1:' + server.port]);
    t.is(s.end('!'), s, 'after it resolved, calls go to the socket; what returns the socket returns the stand-in');
    await until(() => seen.includes('close false'), 5000, () => seen.join(', '));
    t.false(seen.includes('removed ping'));
    await server.close();
    t.is(total(d), 0);
  });

  t1('hostname stand-in: destroy() before the name resolves closes the socket it stands for', async (t) => {
    const server = await echoServer();
    const tn = d.track(net, (_host: string, cb: (ip?: string) => void) => setTimeout(() => cb('127.0.0.1'), 5));
    const s = tn.connect({ host: 'echo.test', port: server.port });
    let closed = 0;
    s.on('close', () => closed++);
    s.destroy();
    await until(() => closed === 1);
    t.is(total(d), 0);
    t.deepEqual(connections(d), []);
    await server.close();
  });

  t1('hostname stand-in: a failed lookup reaches the listeners given so far as error, then close; nothing throws', async (t) => {
    const tn = d.track(net, (_host: string, cb: (ip?: string) => void) => setTimeout(() => cb(), 5));
    const s = tn.connect({ host: 'nowhere.invalid', port: 1 }, () => seen.push('connected'));
    const seen: string[] = [];
    const gone = () => seen.push('removed close');
    s.once('error', (e: Error) => seen.push('error ' + e.message));
    s.on('close', gone);
    s.prependListener('close', (hadError: boolean) => seen.push('close ' + hadError));
    s.removeListener('close', gone);
    s.on('error', () => seen.push('second error'));
    s.removeAllListeners('error');
    s.on('error', (e: Error) => seen.push('error ' + e.message));
    s.setNoDelay(true);
    s.write('lost');
    await until(() => seen.length === 2, 5000, () => seen.join(', '));
    t.deepEqual(seen, ['error cannot resolve nowhere.invalid', 'close true']);
    t.notThrows(() => {
      s.destroy();
      s.setNoDelay(true);
      s.write('x');
      s.end();
    });
    t.is(total(d), 0);
  });
}
