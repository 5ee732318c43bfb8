// The local Device Defender service: an MQTT broker (aedes, in process) or an external one (mosquitto, ...), and a
// collector on it that judges every report published on $aws/things/+/defender/metrics/{cbor,json} and answers on
// the thing's .../accepted or .../rejected topic, in the report's format, as AWS IoT Device Defender does.
//
//   const svc = await startService({ port: 0, minPeriod: 5 });   // svc.url: mqtt://127.0.0.1:PORT
//   svc.on('verdict', (v) => console.log(v.thing, v.reportId, v.verdict, v.errorCode));
//   svc.reports('my-thing');                                      // the last 20, decoded, with their verdicts
//   await svc.close();
import { EventEmitter } from 'node:events';
import { createServer, type Server, type Socket, type AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import mqtt, { type MqttClient } from 'mqtt';
import { Aedes } from 'aedes';
import { Judge, responseBody, encodeResponse, type Report } from './judge.ts';
import { REPORT_FILTERS, matchReportTopic, responseTopic } from './topics.ts';

export type { Report } from './judge.ts';

export interface ServiceOptions {
  /** Address of the embedded broker (default 127.0.0.1). */
  host?: string;
  /** Port of the embedded broker; 0 (the default) for a free one. */
  port?: number;
  /** Seconds a thing waits after an accepted report before the next (default 300, as AWS throttles); fractional ok. */
  minPeriod?: number;
  /** mqtt://HOST:PORT of an external broker: no broker of our own, the collector attaches there. */
  broker?: string;
  /** One line per verdict and per problem (default: silent). */
  log?: (s: string) => void;
  /** Reports remembered per thing (default 20). */
  keep?: number;
  /** Entries allowed per list (default 50). */
  maxList?: number;
}

/** What the 'verdict' event carries: the report as remembered, and its thing. */
export interface VerdictEvent extends Report {
  thing: string;
}

export interface Service extends EventEmitter {
  /** mqtt://HOST:PORT devices connect to. */
  readonly url: string;
  readonly port: number;
  /** The thing's most recent reports, oldest first. */
  reports(thing: string): Report[];
  /** Every thing that has reported. */
  things(): string[];
  close(): Promise<void>;
  on(event: 'verdict', listener: (v: VerdictEvent) => void): this;
  once(event: 'verdict', listener: (v: VerdictEvent) => void): this;
}

class DefenderService extends EventEmitter implements Service {
  private closing?: Promise<void>;

  constructor(
    readonly url: string,
    readonly port: number,
    private readonly judge: Judge,
    private readonly shutdown: () => Promise<void>,
  ) {
    super();
  }

  reports(thing: string): Report[] {
    return this.judge.reports(thing);
  }

  things(): string[] {
    return this.judge.thingNames();
  }

  close(): Promise<void> {
    return (this.closing ??= this.shutdown());
  }
}

export async function startService(opts: ServiceOptions = {}): Promise<Service> {
  const log = opts.log ?? (() => {});
  const judge = new Judge({ minPeriod: opts.minPeriod, keep: opts.keep, maxList: opts.maxList });
  const closers: (() => Promise<void>)[] = [];
  const shutdown = async () => {
    for (const c of closers.splice(0).reverse()) await c().catch((err) => log(`close: ${err.message}`));
  };
  try {
    let url: string;
    let port: number;
    if (opts.broker) {
      url = opts.broker;
      port = Number(new URL(url).port) || 1883;
    } else {
      const host = opts.host ?? '127.0.0.1';
      const broker = await embeddedBroker(host, opts.port ?? 0);
      closers.push(broker.close);
      port = broker.port;
      url = `mqtt://${host.includes(':') ? `[${host}]` : host}:${port}`;
    }
    const client = await mqtt.connectAsync(url, { clientId: `defender-service-${process.pid}-${randomBytes(3).toString('hex')}`, reconnectPeriod: 1000, connectTimeout: 5000 }, false);
    closers.push(() => endClient(client));
    // a PUBACK then the answer, two small writes: without this the answer waits for the peer's delayed ACK
    const noDelay = () => (client.stream as Partial<Socket>).setNoDelay?.(true);
    noDelay();
    client.on('connect', noDelay);
    client.on('error', (err) => log(`MQTT error: ${err.message}`));
    client.on('offline', () => log(`MQTT: lost ${url}, reconnecting`));
    const svc = new DefenderService(url, port, judge, shutdown);
    client.on('message', (topic, payload) => {
      const m = matchReportTopic(topic);
      if (!m) return;
      const r = judge.judge(m.thing, m.format, payload);
      const answer = responseTopic(m.thing, m.format, r.verdict === 'ACCEPTED' ? 'accepted' : 'rejected');
      client.publish(answer, encodeResponse(responseBody(m.thing, r), m.format), { qos: 1 }, (err) => {
        if (err) log(`[${m.thing}] response to report ${r.reportId} not published: ${err.message}`);
      });
      log(`[${m.thing}] report ${r.reportId ?? '(no id)'} (${m.format}): ${r.verdict}${r.errorCode ? ` ${r.errorCode}: ${r.errorMessage}` : ''}`);
      svc.emit('verdict', { thing: m.thing, ...r });
    });
    const granted = await client.subscribeAsync([...REPORT_FILTERS], { qos: 1 });
    if (granted.some((g) => g.qos !== 1)) throw new Error(`${url} refused the report topic subscriptions at QoS 1`);
    return svc;
  } catch (err) {
    await shutdown();
    throw err;
  }
}

/** aedes on a TCP port; close() drops every connection still open. */
async function embeddedBroker(host: string, port: number): Promise<{ port: number; close: () => Promise<void> }> {
  const aedes = await Aedes.createBroker();
  const sockets = new Set<Socket>();
  const server: Server = createServer((s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
    s.setNoDelay(true); // MQTT is small request/response packets: no Nagle wait on each answer
    aedes.handle(s);
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
  } catch (err) {
    await new Promise<void>((r) => aedes.close(() => r()));
    throw err;
  }
  return {
    port: (server.address() as AddressInfo).port,
    async close() {
      await new Promise<void>((r) => aedes.close(() => r()));
      const closed = new Promise<void>((r) => server.close(() => r()));
      for (const s of sockets) s.destroy();
      await closed;
    },
  };
}

/** Ends the client, after its in-flight responses are acknowledged (2 s at most, and not if the broker is gone). */
async function endClient(client: MqttClient): Promise<void> {
  const inFlight = () => Object.keys(client.outgoing).length > 0;
  for (const deadline = Date.now() + 2000; client.connected && inFlight() && Date.now() < deadline; ) {
    await new Promise((r) => setTimeout(r, 10));
  }
  await client.endAsync(!client.connected || inFlight());
}
