// Dashboard test helpers: simulated devices (the built tinymqtt + defender bundles on sim/board.ts, as npm start
// runs them) whose number of open TCP connections the test sets, and Chromium driven by playwright-core.
import { createServer, type Server, type AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { board } from '../../sim/board.ts';

export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

/** Chromium, headless, in a fresh profile that is removed on close. */
export async function launchChromium(): Promise<{ context: BrowserContext; close(): Promise<void> }> {
  const profile = mkdtempSync(join(tmpdir(), 'dashboard-chromium-'));
  try {
    // playwright passes --user-data-dir=profile and --headless itself
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      viewport: { width: 1280, height: 900 },
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    return {
      context,
      async close() {
        await context.close();
        rmSync(profile, { recursive: true, force: true });
      },
    };
  } catch (err) {
    rmSync(profile, { recursive: true, force: true });
    throw err;
  }
}

/** A TCP server that echoes: what the simulated devices connect to. */
export async function echoServer(): Promise<{ port: number; close(): Promise<void> }> {
  const srv: Server = createServer((s) => {
    s.on('error', () => {});
    s.pipe(s);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return {
    port: (srv.address() as AddressInfo).port,
    close: () => new Promise<void>((r) => srv.close(() => r())),
  };
}

export interface SimDevice {
  /** Opens or closes connections to the echo server until `n` are open. */
  connections(n: number): void;
  stop(): void;
}

/** One simulated device reporting to the service at mqttPort every `period` seconds, with `open` connections to
 * the echo server, a listening TCP port and a UDP one. */
export function simDevice(thing: string, mqttPort: number, echoPort: number, period: number, open = 1): SimDevice {
  const b = board();
  const d = b.require('defender');
  const net = d.track(b.require('net'));
  const client = b.require('tinymqtt').create('127.0.0.1', { port: mqttPort, client_id: thing, keep_alive: 30, transport: net });
  const srv = net.createServer((s: any) => s.on('error', () => {}));
  srv.listen(0);
  const udp = d.track(b.require('dgram')).createSocket('udp4');
  udp.on('error', () => {});
  udp.bind(0);
  const socks: any[] = [];
  const connections = (n: number) => {
    while (socks.length < n) {
      const s = net.connect({ host: '127.0.0.1', port: echoPort });
      s.on('error', () => {});
      socks.push(s);
    }
    while (socks.length > n) socks.pop().end();
  };
  connections(open);
  let started = false;
  client.on('connected', () => {
    if (started) return;
    started = true;
    d.start({ mqtt: client, thingName: thing, format: 'cbor', longTags: false, period, minPeriod: period, slots: 8, callback: () => {} });
  });
  client.connect();
  return {
    connections,
    stop() {
      d.stop();
      connections(0);
      srv.close();
      udp.close();
      client.disconnect();
    },
  };
}
