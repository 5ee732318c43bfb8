// `npm start`: the local Device Defender service on a free loopback port (or an external broker), and N simulated
// devices, each running the built build/tinymqtt.js + build/defender.js in Node (sim/board.ts stands in for the Espruino
// globals). Each device opens and closes real TCP connections to a local echo server, listens on a TCP and a UDP
// port, and reports on a short period (minPeriod lowered). Every report is shown decoded, per device, with the
// service's verdict, until Ctrl-C (or --reports N verdicts per device).
//
//   npm start -- [--format cbor|json] [--long-tags] [--period SECONDS] [--devices N] [--broker URL] [--reports N]
import { parseArgs } from 'node:util';
import { createServer as createNetServer, type Server } from 'node:net';
import mqtt from 'mqtt';
import * as cborg from 'cborg';
import { board } from './board.ts';

export interface Options {
  format: 'cbor' | 'json';
  longTags: boolean;
  period: number;
  devices: number;
  broker?: string;
  reports: number;
  /** Where lines go (stdout by default). */
  print?: (line: string) => void;
}

export function parse(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      format: { type: 'string', default: 'cbor' },
      'long-tags': { type: 'boolean', default: false },
      period: { type: 'string', default: '5' },
      devices: { type: 'string', default: '2' },
      broker: { type: 'string' },
      reports: { type: 'string', default: '0' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log('npm start -- [--format cbor|json] [--long-tags] [--period SECONDS] [--devices N] [--broker mqtt://HOST:PORT] [--reports N]');
    process.exit(0);
  }
  const o: Options = {
    format: values.format as any,
    longTags: values['long-tags']!,
    period: Number(values.period),
    devices: Number(values.devices),
    broker: values.broker,
    reports: Number(values.reports),
  };
  if (o.format !== 'cbor' && o.format !== 'json') throw new Error('--format is cbor or json');
  if (!(o.period >= 1 && o.period <= 86400)) throw new Error('--period is 1 to 86400 seconds');
  if (!(Number.isInteger(o.devices) && o.devices >= 1 && o.devices <= 100)) throw new Error('--devices is 1 to 100');
  if (!(Number.isInteger(o.reports) && o.reports >= 0)) throw new Error('--reports is a count');
  return o;
}

const COLORS = [32, 36, 35, 33, 34, 31];
const paint = (i: number, s: string) => (process.stdout.isTTY ? `\x1b[${COLORS[i % COLORS.length]}m${s}\x1b[0m` : s);

/** One line per report: its metrics, short. Accepts long or short tags. */
export function describe(doc: any): string {
  const g = (o: any, long: string, short: string) => (o ? (o[long] ?? o[short]) : undefined);
  const met = g(doc, 'metrics', 'met') ?? {};
  const parts: string[] = [];
  const ec = g(g(met, 'tcp_connections', 'tc'), 'established_connections', 'ec');
  if (ec) {
    const cs = (g(ec, 'connections', 'cs') ?? []).map((c: any) => g(c, 'remote_addr', 'rad') + (g(c, 'local_port', 'lp') ? `<-${g(c, 'local_port', 'lp')}` : ''));
    parts.push(`tcp ${g(ec, 'total', 't') ?? '?'} [${cs.join(' ')}]`);
  }
  for (const [l, s, name] of [['listening_tcp_ports', 'tp', 'listen tcp'], ['listening_udp_ports', 'up', 'udp']]) {
    const p = g(met, l, s);
    if (p) parts.push(`${name} [${(g(p, 'ports', 'pts') ?? []).map((x: any) => g(x, 'port', 'pt')).join(' ')}]`);
  }
  const ns = g(met, 'network_stats', 'ns');
  if (ns) parts.push(`in ${g(ns, 'bytes_in', 'bi')} B/${g(ns, 'packets_in', 'pi')} out ${g(ns, 'bytes_out', 'bo')} B/${g(ns, 'packets_out', 'po')}`);
  const cm = g(doc, 'custom_metrics', 'cmet');
  if (cm) parts.push('custom ' + JSON.stringify(cm));
  return parts.join(', ');
}

function decodePayload(buf: Buffer, json: boolean): any {
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
  if (!url) {
    const { startService } = await import('../service/service.ts');
    const svc: any = await startService({ host: '127.0.0.1', port: 0, minPeriod: Math.min(o.period, 300) * 0.8 });
    url = svc.url ?? `mqtt://127.0.0.1:${svc.port}`;
    closers.push(() => svc.close());
    print(`local Device Defender service on ${url}`);
  } else {
    const { startService } = await import('../service/service.ts');
    const svc: any = await startService({ broker: url, minPeriod: Math.min(o.period, 300) * 0.8 });
    closers.push(() => svc.close());
    print(`Device Defender service attached to ${url}`);
  }
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
    const doc = decodePayload(payload, json);
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

if (process.argv[1] && import.meta.filename === process.argv[1]) {
  let opts: Options;
  try {
    opts = parse(process.argv.slice(2));
  } catch (err) {
    console.error((err as Error).message);
    process.exit(2);
  }
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
