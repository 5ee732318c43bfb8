// Detect test harness: the real service (startService) with Detect attached on a SQLite file, and devices that are
// the built tinymqtt + defender on a simulated board (sim/board.ts), reporting when asked (agent.report()). The
// devices' MQTT connection is not tracked, so their reports hold only the traffic a test makes on the tracked net.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Server } from 'node:net';
import { board } from '../../sim/board.ts';
import { startService, type Service, type ServiceOptions } from '../../service/service.ts';
import { attachDetect, type AlertMessage, type Detect, type DetectOptions } from '../../service/detect/detect.ts';
import { openSqlite } from '../../service/store/sqlite.ts';
import { until } from '../helpers/until.ts';

export interface Device {
  thing: string;
  /** The board's tracked net (connections made with it are in the reports). */
  net: any;
  /** The board's tracked dgram. */
  dgram: any;
  /** Custom metrics of the next report. */
  custom: Record<string, unknown> | null;
  /** Publishes a report, waits for it to be accepted and evaluated; resolves with the alerts it raised. */
  report(): Promise<AlertMessage[]>;
  stop(): void;
}

export interface Harness {
  svc: Service;
  detect: Detect;
  /** The SQLite file. */
  file: string;
  /** Every alert, in order. */
  alerts: AlertMessage[];
  logs: string[];
  device(thing: string, format?: 'cbor' | 'json'): Promise<Device>;
  /** Stops the service and Detect (the store file stays) and starts both again on the same file. */
  restart(): Promise<void>;
  close(): Promise<void>;
}

/** `service`: options of the service beside the defaults (port 0, minPeriod 0). */
export async function harness(profiles: Record<string, unknown>[], extra: Partial<DetectOptions> = {}, file?: string, service: ServiceOptions = {}): Promise<Harness> {
  file ??= join(mkdtempSync(join(tmpdir(), 'detect-')), 'defender.db');
  const alerts: AlertMessage[] = [];
  const logs: string[] = [];
  const devices: BoardDevice[] = [];
  const start = async () => {
    const svc = await startService({ port: 0, minPeriod: 0, ...service });
    const detect = await attachDetect(svc, {
      store: openSqlite(file!),
      profiles,
      statisticsRefreshMs: 0,
      profileRefreshMs: 0,
      log: (l) => logs.push(l),
      ...extra,
    });
    detect.on('alert', (m) => alerts.push(m));
    return { svc, detect };
  };
  let cur = await start();
  const h: Harness = {
    get svc() {
      return cur.svc;
    },
    get detect() {
      return cur.detect;
    },
    file,
    alerts,
    logs,
    async device(thing, format = 'cbor') {
      const dev = await boardDevice({ thing, format, port: () => cur.svc.port, alerts, idle: () => cur.detect.idle() });
      devices.push(dev);
      return dev;
    },
    async restart() {
      await cur.detect.close();
      await cur.svc.close();
      cur = await start();
      for (const dev of devices) await dev.reconnect();
    },
    async close() {
      for (const dev of devices) dev.stop();
      await cur.detect.close();
      await cur.svc.close();
    },
  };
  return h;
}

export interface BoardDevice extends Device {
  /** Stops the agent, disconnects, and connects again (to the port `port()` gives now). */
  reconnect(): Promise<void>;
}

export interface BoardDeviceOptions {
  thing: string;
  format?: 'cbor' | 'json';
  /** The MQTT port on 127.0.0.1, asked at each connect. */
  port: () => number;
  /** Where Detect's alerts arrive (report() returns those of its own thing that came meanwhile). */
  alerts: AlertMessage[];
  /** Resolves when every accepted report is evaluated. */
  idle: () => Promise<void>;
}

/** A device: the built tinymqtt + defender on a simulated board, its agent reporting when report() asks. */
export async function boardDevice(o: BoardDeviceOptions): Promise<BoardDevice> {
  const { thing, alerts } = o;
  const b = board();
  const d = b.require('defender');
  const net = d.track(b.require('net'));
  const dgram = d.track(b.require('dgram'));
  const accepted: number[] = [];
  const other: string[] = [];
  let client: any;
  /** A new client and the agent on it. */
  const connect = () =>
    new Promise<void>((resolve) => {
      client = b.require('tinymqtt').create('127.0.0.1', { port: o.port(), client_id: thing, transport: b.require('net'), reconnect: false });
      client.on('error', () => {});
      b.global.mqtt = client;
      client.once('connected', () => {
        d.start({
          mqtt: client,
          thingName: thing,
          format: o.format ?? 'cbor',
          period: 3600,
          minPeriod: 1,
          custom: () => dev.custom,
          callback: (ev: any) => (ev.type === 1 ? accepted.push(ev.reportId) : other.push(`${ev.type} ${ev.code} ${ev.message}`)),
        });
        resolve();
      });
      client.connect();
    });
  const dev: BoardDevice = {
    thing,
    net,
    dgram,
    custom: null,
    async report() {
      const before = accepted.length;
      const seen = alerts.length;
      const deadline = Date.now() + 5000;
      // BUSY while the previous publish awaits its PUBACK; MQTT_FAILURE before the first connect
      while (d.report() !== 0) { // 0: SUCCESS (error codes are documented numbers)
        if (Date.now() > deadline) throw new Error(`${thing}: report() refused`);
        await new Promise((r) => setTimeout(r, 10));
      }
      await until(() => accepted.length > before, 5000, () => `${thing}: accepted ${accepted.length}, other ${other.join(' | ')}`);
      await o.idle();
      return alerts.slice(seen).filter((a) => a.thingName === thing);
    },
    stop() {
      d.stop();
      b.stop();
    },
    async reconnect() {
      d.stop();
      client.disconnect();
      await connect();
    },
  };
  await connect();
  return dev;
}

/** A TCP server on every local address that echoes what it gets. */
export async function echoServer(): Promise<{ port: number; server: Server; close(): Promise<void> }> {
  const sockets = new Set<import('node:net').Socket>();
  const server = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    s.pipe(s);
  });
  await new Promise<void>((r) => server.listen(0, r));
  return {
    port: (server.address() as any).port,
    server,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        for (const s of sockets) s.destroy();
      }),
  };
}
