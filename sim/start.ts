// `npm start`: the local Device Defender service on a free loopback port (or an external broker), and N simulated
// devices, each running the built build/tinymqtt.js + build/defender.js in Node (sim/board.ts stands in for the Espruino
// globals). Each device opens and closes real TCP connections to a local echo server, listens on a TCP and a UDP
// port, and reports on a short period (minPeriod lowered). Every report is shown decoded, per device, with the
// service's verdict, until Ctrl-C (or --reports N verdicts per device). The Detect engine judges the accepted reports
// against profiles/sample.json, keeping metrics and violations in a store (--store, a SQLite file by default), and
// prints each violation raised and cleared; the dashboard (service/http) shows the store, at the address printed.
//
//   npm start -- [--format cbor|json] [--long-tags] [--period SECONDS] [--devices N] [--broker URL] [--reports N]
//                [--store PATH|postgres://...] [--http-port N]
//
// Its flags are checked before anything is built or started (the npm script runs this file, which builds after):
// a mistake is one line and a non-zero exit status, not a stack trace after the build. mqtt and cborg load only
// once the flags are good.
import { createServer as createNetServer, type Server } from 'node:net';
import type { MqttClient } from 'mqtt';
import { join } from 'node:path';
import { board } from './board.ts';
import type { Service } from '../service/service.ts';
import type { Detect } from '../service/detect/detect.ts';
import { parseFlags, usage, UsageError } from '../tools/args.mjs';

export interface Options {
  format: 'cbor' | 'json';
  longTags: boolean;
  period: number;
  devices: number;
  broker?: string;
  reports: number;
  /** Detect's store: a SQLite file or a postgres:// URL. */
  store: string;
  /** The dashboard's port on 127.0.0.1 (0: a free one). */
  httpPort: number;
  /** --help was asked for: print `help` and do nothing else. */
  help?: boolean;
  /** Where lines go (stdout by default). */
  print?: (line: string) => void;
}

/** Every flag of `npm start`, with its help line (printed by --help). */
export const flags = {
  format: { type: 'string', value: 'cbor|json', default: 'cbor', help: 'report encoding' },
  'long-tags': { type: 'boolean', help: 'long tag names in the reports ("header" instead of "hed")' },
  period: { type: 'string', value: 'SECONDS', default: '5', help: 'seconds between reports, 1 to 86400' },
  devices: { type: 'string', value: 'N', default: '2', help: 'simulated devices, 1 to 100' },
  broker: { type: 'string', value: 'mqtt://HOST:PORT', help: 'an external MQTT broker (mosquitto, ...) instead of the embedded one' },
  reports: { type: 'string', value: 'N', default: '0', help: 'stop after N verdicts per device; 0 runs until Ctrl-C' },
  store: { type: 'string', value: 'PATH|postgres://...', default: 'defender.db', help: "Detect's metrics and violations: a SQLite file (created if missing, kept between runs) or a PostgreSQL URL" },
  'http-port': { type: 'string', value: 'N', default: '0', help: "the dashboard's port on 127.0.0.1; 0 for a free one (its address is printed)" },
  help: { type: 'boolean', short: 'h', help: 'print this help and exit' },
} as const;

export const help = usage(
  'npm start -- [flags]',
  'The local Device Defender service and simulated devices running the built bundles; every report is printed with its verdict, and every violation of profiles/sample.json raised and cleared; the dashboard address is printed.',
  flags,
);

/** Checks the flags; throws a UsageError (one line) for a bad one. */
export function parse(argv: string[]): Options {
  const values = parseFlags(argv, flags) as Record<string, string | boolean | undefined>;
  if (values.help) return { format: 'cbor', longTags: false, period: 5, devices: 2, reports: 0, store: 'defender.db', httpPort: 0, help: true };
  const o: Options = {
    format: values.format as any,
    longTags: values['long-tags'] === true,
    period: Number(values.period),
    devices: Number(values.devices),
    broker: values.broker as string | undefined,
    reports: Number(values.reports),
    store: values.store as string,
    httpPort: Number(values['http-port']),
  };
  if (o.format !== 'cbor' && o.format !== 'json') throw new UsageError(`--format is cbor or json, not "${values.format}"`);
  if (!(o.period >= 1 && o.period <= 86400)) throw new UsageError(`--period is 1 to 86400 seconds, not "${values.period}"`);
  if (!(Number.isInteger(o.devices) && o.devices >= 1 && o.devices <= 100)) throw new UsageError(`--devices is 1 to 100, not "${values.devices}"`);
  if (!(Number.isInteger(o.reports) && o.reports >= 0)) throw new UsageError(`--reports is a count (0 for no end), not "${values.reports}"`);
  if (!o.store) throw new UsageError('--store is a file name or a postgres:// URL, not empty');
  if (!(Number.isInteger(o.httpPort) && o.httpPort >= 0 && o.httpPort <= 65535)) throw new UsageError(`--http-port is 0 to 65535, not "${values['http-port']}"`);
  if (o.broker !== undefined) {
    let url: URL | undefined;
    try {
      url = new URL(o.broker);
    } catch {
      url = undefined;
    }
    // The simulated devices speak plain MQTT over TCP (tinymqtt on a tracked net), so only mqtt:// will do.
    if (!url || url.protocol !== 'mqtt:' || !url.hostname) throw new UsageError(`--broker "${o.broker}" is not a broker address; give mqtt://HOST:PORT`);
  }
  return o;
}

/** Connects to the broker once, as a check, before anything is built: a one-line error if it does not answer. */
export async function checkBroker(url: string): Promise<void> {
  const { default: mqtt } = await import('mqtt');
  const probe = mqtt.connectAsync(url, { clientId: `npm-start-check-${process.pid}`, reconnectPeriod: 0, connectTimeout: 5000 }, false);
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<MqttClient>((_, reject) => (timer = setTimeout(() => reject(new Error('no MQTT answer within 10 s')), 10000)));
  try {
    const client = await Promise.race([probe, late]);
    await client.endAsync(true);
  } catch (err) {
    probe.then((c) => c.end(true), () => {});
    throw new Error(`cannot reach the broker ${url}: ${(err as Error).message}`);
  } finally {
    clearTimeout(timer);
  }
}

const COLORS = [32, 36, 35, 33, 34, 31];
const paint = (i: number, s: string) => (process.stdout.isTTY ? `\x1b[${COLORS[i % COLORS.length]}m${s}\x1b[0m` : s);

/** One line per report: its metrics, each labelled. Accepts long or short tags. */
export function describe(doc: any): string {
  const g = (o: any, long: string, short: string) => (o ? (o[long] ?? o[short]) : undefined);
  const met = g(doc, 'metrics', 'met') ?? {};
  const parts: string[] = [];
  const ec = g(g(met, 'tcp_connections', 'tc'), 'established_connections', 'ec');
  if (ec) {
    const cs = (g(ec, 'connections', 'cs') ?? []).map((c: any) => g(c, 'remote_addr', 'rad') + (g(c, 'local_port', 'lp') ? `<-${g(c, 'local_port', 'lp')}` : ''));
    parts.push(`tcp connections ${g(ec, 'total', 't') ?? '?'} [${cs.join(' ')}]`);
  }
  for (const [l, s, name] of [['listening_tcp_ports', 'tp', 'listening tcp'], ['listening_udp_ports', 'up', 'listening udp']]) {
    const p = g(met, l, s);
    if (p) parts.push(`${name} [${(g(p, 'ports', 'pts') ?? []).map((x: any) => g(x, 'port', 'pt')).join(' ')}]`);
  }
  const ns = g(met, 'network_stats', 'ns');
  // network stats are deltas: since the previous report
  if (ns) parts.push(`since last report: in ${g(ns, 'bytes_in', 'bi')} bytes/${g(ns, 'packets_in', 'pi')} packets, out ${g(ns, 'bytes_out', 'bo')} bytes/${g(ns, 'packets_out', 'po')} packets`);
  const cm = g(doc, 'custom_metrics', 'cmet');
  if (cm) parts.push('custom ' + JSON.stringify(cm));
  return parts.join(', ');
}

function decodePayload(buf: Buffer, json: boolean, cborg: typeof import('cborg')): any {
  try {
    return json ? JSON.parse(buf.toString('utf8')) : cborg.decode(buf, { useMaps: false });
  } catch {
    return undefined;
  }
}

interface DeviceOptions {
  thing: string;
  host: string;
  port: number;
  echoPort: number;
  format: 'cbor' | 'json';
  longTags: boolean;
  period: number;
  log: (s: string) => void;
}

interface Device {
  stop(): Promise<void>;
}

const EVENTS = ['', 'accepted', 'rejected', 'publish failed', 'subscribe failed', 'report not written', 'report truncated', 'slots overflowed', 'unexpected response'];

/** One simulated device: its own tinymqtt + defender, a tracked net, traffic to the echo server, a listening TCP
 * and UDP port, the agent reporting every `period` seconds (minPeriod lowered: a local collector). */
async function startDevice(o: DeviceOptions): Promise<Device> {
  const b = board();
  const req = b.require;
  const d = req('defender');
  const tm = req('tinymqtt');
  const net = d.track(req('net'));
  const client = tm.create(o.host, { port: o.port, client_id: o.thing, keep_alive: 30, transport: net });
  const srv = net.createServer((s: any) => {
    s.on('error', () => {});
    s.end('hello\n');
  });
  srv.listen(0);
  const udp = d.track(req('dgram')).createSocket('udp4');
  udp.on('error', () => {});
  udp.bind(0);
  // traffic: every second open a connection to the echo server, keep 1 to 3 open for a few seconds
  const open: any[] = [];
  const traffic = setInterval(() => {
    if (open.length < 3) {
      const s = net.connect({ host: '127.0.0.1', port: o.echoPort }, () => s.write('ping ' + o.thing));
      s.on('error', () => {});
      open.push(s);
    }
    if (open.length > 1 && Math.random() < 0.5) open.shift().end();
  }, 1000);
  let started = false;
  client.on('connected', () => {
    if (started) return o.log('MQTT reconnected');
    started = true;
    const rc = d.start({
      mqtt: client,
      thingName: o.thing,
      format: o.format,
      longTags: o.longTags,
      period: o.period,
      minPeriod: Math.min(o.period, 300),
      slots: 8,
      callback: (ev: any) => {
        if (ev.type > 2) o.log(`agent: ${EVENTS[ev.type] ?? ev.type}${ev.reportId ? ' (report ' + ev.reportId + ')' : ''}${ev.code ? ' ' + (typeof ev.code === 'number' && ev.type < 6 ? d.strerror(ev.code) : ev.code) : ''}${ev.message ? ': ' + ev.message : ''}`);
      },
    });
    o.log(rc ? 'agent not started: ' + d.strerror(rc) : `agent started, MQTT ${o.host}:${o.port}`);
  });
  client.on('disconnected', (why: any) => o.log('MQTT disconnected' + (why ? ': ' + why : '')));
  client.on('error', (err: any) => o.log('MQTT error: ' + (err?.message ?? err)));
  client.connect();
  return {
    async stop() {
      clearInterval(traffic);
      d.stop();
      for (const s of open) s.end();
      srv.close();
      udp.close();
      client.disconnect();
    },
  };
}

/** Detect on the service with the store and the sample profile; violations raised and cleared are printed.
 * Its alerts go out on defender/alerts/THING, published by the embedded broker itself. */
async function startDetect(svc: Service, where: string, print: (s: string) => void): Promise<Detect> {
  const { attachDetect } = await import('../service/detect/detect.ts');
  const { openStore } = await import('../service/store/store.ts');
  const store = await openStore(where);
  try {
    return await attachDetect(svc, { store, profiles: [SAMPLE_PROFILE], log: (l) => print(l) });
  } catch (err) {
    await store.close();
    throw err;
  }
}

/** The security profile `npm start` loads. */
export const SAMPLE_PROFILE = join(import.meta.dirname, '..', 'profiles', 'sample.json');

export interface Run {
  /** Verdicts seen so far per thing name. */
  verdicts: Map<string, string[]>;
  /** Resolves when every device has --reports verdicts (never when --reports is 0). */
  done: Promise<void>;
  stop(): Promise<void>;
}

export async function run(o: Options): Promise<Run> {
  const print = o.print ?? ((s: string) => console.log(s));
  const closers: (() => Promise<void> | void)[] = [];
  let url = o.broker;
  const { startService } = await import('../service/service.ts');
  let svc: Service;
  if (!url) {
    svc = await startService({ host: '127.0.0.1', port: 0, minPeriod: Math.min(o.period, 300) * 0.8 });
    url = svc.url;
    closers.push(() => svc.close());
    print(`local Device Defender service on ${url}`);
  } else {
    svc = await startService({ broker: url, minPeriod: Math.min(o.period, 300) * 0.8 });
    closers.push(() => svc.close());
    print(`Device Defender service attached to ${url}`);
  }
  const detect = await startDetect(svc, o.store, print);
  closers.push(() => detect.close()); // before the service's closer (closers run reversed); closes the store too
  const { startDashboard } = await import('../service/http/server.ts');
  const { StoreFleet } = await import('../service/http/store-fleet.ts');
  const fleet = new StoreFleet(detect, svc);
  closers.push(() => fleet.close());
  const dash = await startDashboard(svc, { port: o.httpPort, data: fleet });
  closers.push(() => dash.close());
  print(`dashboard on ${dash.url}`);
  const { hostname, port } = new URL(url!);
  const host = hostname || '127.0.0.1';
  const mqttPort = Number(port) || 1883;

  // an echo server the devices open and close real TCP connections to
  const echo: Server = createNetServer((s) => {
    s.on('error', () => {});
    s.pipe(s);
  });
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  const echoPort = (echo.address() as any).port;
  closers.push(() => new Promise<void>((r) => echo.close(() => r())));

  // an observer: every report and every verdict, on the broker
  const json = o.format === 'json';
  const { default: mqtt } = await import('mqtt');
  const cborg = await import('cborg');
  const observer = await mqtt.connectAsync(url!, { clientId: 'npm-start-observer-' + process.pid, reconnectPeriod: 500 });
  closers.push(() => observer.endAsync(true) as any);
  const fmt = o.format;
  await observer.subscribeAsync([`$aws/things/+/defender/metrics/${fmt}`, `$aws/things/+/defender/metrics/${fmt}/+`], { qos: 1 });
  const reports = new Map<string, any>();
  const verdicts = new Map<string, string[]>();
  const names = Array.from({ length: o.devices }, (_, i) => `sim-device-${i + 1}`);
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));
  observer.on('message', (topic, payload) => {
    const m = /^\$aws\/things\/([^/]+)\/defender\/metrics\/(cbor|json)(?:\/(accepted|rejected))?$/.exec(topic);
    if (!m) return;
    const [, thing, , verdict] = m;
    const i = names.indexOf(thing);
    const doc = decodePayload(payload, json, cborg);
    if (!verdict) {
      const h = doc && (doc.header ?? doc.hed);
      if (h) reports.set(thing + '/' + (h.report_id ?? h.rid), doc);
      return;
    }
    const id = doc?.reportId;
    const rep = reports.get(thing + '/' + id);
    reports.delete(thing + '/' + id);
    const what = verdict === 'accepted' ? 'ACCEPTED' : `REJECTED ${doc?.statusDetails?.ErrorCode}: ${doc?.statusDetails?.ErrorMessage}`;
    print(paint(Math.max(i, 0), `[${thing}] report ${id}: ${rep ? describe(rep) : '(report not seen)'} -> ${what}`));
    const list = verdicts.get(thing) ?? [];
    list.push(verdict === 'accepted' ? 'ACCEPTED' : 'REJECTED');
    verdicts.set(thing, list);
    if (o.reports && names.every((n) => (verdicts.get(n)?.length ?? 0) >= o.reports)) resolveDone();
  });

  const devices: Device[] = [];
  for (const thing of names) {
    devices.push(
      await startDevice({ thing, host, port: mqttPort, echoPort, format: o.format, longTags: o.longTags, period: o.period, log: (s) => print(`[${thing}] ${s}`) }),
    );
  }
  closers.push(async () => {
    for (const d of devices) await d.stop();
  });
  print(`${o.devices} device(s), a ${o.format.toUpperCase()} report every ${o.period} s${o.longTags ? ' (long tags)' : ''}; Ctrl-C to stop`);
  return {
    verdicts,
    done,
    async stop() {
      for (const c of closers.reverse()) await c();
    },
  };
}

/** `npm start`: flags, then the broker check, then the build, then the run; any failure is one line. */
async function main(argv: string[]): Promise<void> {
  const opts = parse(argv);
  if (opts.help) {
    process.stdout.write(help);
    return;
  }
  if (opts.broker) await checkBroker(opts.broker);
  const { build } = await import('../tools/build.mjs');
  await build();
  // the dashboard page (build/web), as `npm run build` makes it; the script builds when imported
  await import('../tools/build-web.mjs');
  const r = await run(opts);
  const quit = async (code: number) => {
    await r.stop();
    process.exit(code);
  };
  process.on('SIGINT', () => void quit(0));
  process.on('SIGTERM', () => void quit(0));
  if (opts.reports) {
    await r.done;
    await quit(0);
  }
}

if (process.argv[1] && import.meta.filename === process.argv[1]) {
  main(process.argv.slice(2)).catch((err) => {
    console.error(`npm start: ${err?.message ?? err}`);
    process.exit(err instanceof UsageError ? 2 : 1);
  });
}
