// The local Device Defender service: an MQTT broker (aedes, in process) or an external one (mosquitto, ...), and a
// collector on it that judges every report published on $aws/things/+/defender/metrics/{cbor,json} and answers on
// the thing's .../accepted or .../rejected topic, in the report's format, as AWS IoT Device Defender does.
//
//   const svc = await startService({ port: 0, minPeriod: 5 });   // svc.url: mqtt://127.0.0.1:PORT
//   svc.on('verdict', (v) => console.log(v.thing, v.reportId, v.verdict, v.errorCode));
//   svc.reports('my-thing');                                      // among the last 20 of all things, decoded
//   await svc.close();
//
// Exposed to a fleet: `tls` (mutual TLS, a device's certificate CN is its thing name), or an attached mosquitto
// with the configuration in broker/mosquitto/. Attached, the collector keeps a persistent session (fixed client
// id, clean session off, QoS 1) so that what the broker queued while it was away is delivered when it is back.
// Several collectors can share one broker's report topics (`shareGroup`: MQTT shared subscriptions), each thing's
// last accepted report then kept in their common store (`ledger`), so that each report is accepted once.
import { EventEmitter } from 'node:events';
import { isIP, type Socket } from 'node:net';
import { readFileSync } from 'node:fs';
import mqtt, { MqttClient, type IClientOptions } from 'mqtt';
import { Judge, responseBody, encodeResponse, type Ledger, type Report } from './judge.ts';
import { matchReportTopic, reportFilters, responseTopic, sharedFilter } from './topics.ts';
import { thingNameError } from './validate.ts';
import { embeddedBroker, type Access, type TlsFiles } from './broker/embedded.ts';
import type { Meter } from './broker/meter.ts';

export type { Report, Ledger } from './judge.ts';
export type { Access, TlsFiles } from './broker/embedded.ts';

export interface ServiceOptions {
  /** Address of the embedded broker (default 127.0.0.1). */
  host?: string;
  /** Port of the embedded broker; 0 (the default) for a free one. */
  port?: number;
  /** Mutual TLS on the embedded broker: devices show a certificate signed by caFile whose CN is their thing name
   * and client id. */
  tls?: TlsFiles;
  /** Without `tls`: 'open' (the default; development, loopback only: any client, any topic, answers from the
   * service only) or 'thing' (a client acts only as the thing its client id names). */
  access?: Access;
  /** With `tls` or access 'thing': client ids (under tls, certificate CNs) of operators, programs that may subscribe
   * to Detect's alerts (any topic outside "$...") and publish nothing. Without tls nothing proves a client id, as
   * for a thing. */
  operators?: string[];
  /** Seconds a thing waits after an accepted report before the next (default 300, as AWS throttles); fractional ok. */
  minPeriod?: number;
  /** mqtt://HOST:PORT or mqtts://HOST:PORT of an external broker: no broker of our own, the collector attaches. */
  broker?: string;
  /** The collector's client id on an external broker: fixed, so its persistent session survives (default
   * 'defender-service'; with use_username_as_clientid, mosquitto takes the certificate's CN instead). */
  clientId?: string;
  /** Client certificate (CN: the collector's name in the ACL) and CA for an mqtts:// broker. */
  brokerTls?: TlsFiles;
  /** Each thing's last accepted report (what refuses a report id that does not increase, and throttles) in this
   * store rather than in memory: shared by every collector on it, and kept across a restart. */
  ledger?: Ledger;
  /** Several collectors on one external broker: subscribe as `$share/GROUP/...`, so that the broker hands each
   * report to one collector of the group. Needs `broker`, `ledger` and a `clientId` of this collector's own. */
  shareGroup?: string;
  /** With `shareGroup`: the prefix under which the broker republishes `$aws/things/...` reports (mosquitto 2.0 does
   * not hand a topic starting with "$" to a shared subscription; a bridge of mosquitto to itself republishes them,
   * docs/service.md). Default `$aws/things/`, for brokers that do (EMQX, HiveMQ, VerneMQ). */
  sharePrefix?: string;
  /** One line per verdict and per problem (default: silent). */
  log?: (s: string) => void;
  /** Recent reports remembered with their documents, all things together (default 20). */
  keep?: number;
  /** Things held in memory (default 10,000); past it the one that reported longest ago is forgotten. */
  maxThings?: number;
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
  /** What each thing did on the embedded broker (Detect's cloud-side metrics); undefined on an external broker,
   * which does not tell. */
  readonly meter?: Meter;
  /** Publishes as the embedded broker itself, in process (QoS 1; no client, no authorization: how Detect's alerts
   * go out); undefined on an external broker. */
  readonly publish?: (topic: string, payload: string) => Promise<void>;
  /** The thing's reports among the `keep` most recent of all things, oldest first. */
  reports(thing: string): Report[];
  /** The things held in memory (at most maxThings), the one that reported longest ago first. */
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
    readonly meter: Meter | undefined,
    readonly publish: ((topic: string, payload: string) => Promise<void>) | undefined,
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
  if (opts.shareGroup !== undefined) {
    // a group shares a broker among processes: the embedded one lives in this process, with this collector alone
    if (!opts.broker) throw new Error('shareGroup needs an external broker (broker: mqtt://...)');
    if (!opts.ledger) throw new Error("shareGroup needs a ledger (the collectors' common store), else each collector keeps its own last report ids");
    if (!opts.clientId) throw new Error('shareGroup needs a clientId of this collector\'s own (two collectors with one id take turns at the broker)');
  }
  if (opts.broker && opts.operators) throw new Error("operators are the embedded broker's: on an external one its ACL says who reads alerts");
  const filters = opts.shareGroup === undefined ? reportFilters() : reportFilters(opts.sharePrefix).map((f) => sharedFilter(opts.shareGroup!, f));
  const judge = new Judge({ minPeriod: opts.minPeriod, keep: opts.keep, maxList: opts.maxList, maxThings: opts.maxThings, onEvict: (t) => log(`[${t}] forgotten: more than ${judge.maxThings} things`) });
  const closers: (() => Promise<void>)[] = [];
  const shutdown = async () => {
    for (const c of closers.splice(0).reverse()) await c().catch((err) => log(`close: ${err.message}`));
  };
  try {
    let url: string;
    let port: number;
    let client: MqttClient;
    let meter: Meter | undefined;
    let publish: Service['publish'];
    if (opts.broker) {
      url = opts.broker;
      port = brokerPort(url);
      client = await attach(url, opts);
    } else {
      const host = opts.host ?? '127.0.0.1';
      const access = opts.access ?? 'open';
      if (!opts.tls && access === 'open' && !isLoopback(host)) {
        throw new Error(`an open broker on ${host} would let any client speak for any thing: give tls, or access 'thing', or a loopback host`);
      }
      const broker = await embeddedBroker({ host, port: opts.port ?? 0, tls: opts.tls, access, operators: opts.operators });
      closers.push(broker.close);
      meter = broker.meter;
      publish = broker.publish;
      port = broker.port;
      url = `${opts.tls ? 'mqtts' : 'mqtt'}://${host.includes(':') ? `[${host}]` : host}:${port}`;
      client = new MqttClient(() => broker.serviceStream(), { clientId: broker.serviceClientId, reconnectPeriod: 0, protocolVersion: 4, protocolId: 'MQTT', clean: true } as IClientOptions);
      await new Promise<void>((resolve, reject) => {
        client.once('connect', () => resolve());
        client.once('error', reject);
      });
    }
    closers.push(() => endClient(client));
    // a PUBACK then the answer, two small writes: without this the answer waits for the peer's delayed ACK
    const noDelay = () => (client.stream as Partial<Socket>).setNoDelay?.(true);
    noDelay();
    client.on('connect', noDelay);
    client.on('error', (err) => log(`MQTT error: ${err.message}`));
    client.on('offline', () => log(`MQTT: lost ${url}, reconnecting`));
    const svc = new DefenderService(url, port, meter, publish, judge, shutdown);
    const ledger = opts.ledger;
    client.on('message', async (topic, payload) => {
      const m = matchReportTopic(topic, opts.shareGroup === undefined ? undefined : opts.sharePrefix);
      if (!m) return;
      let r: Report;
      try {
        r = ledger ? await judge.judgeShared(m.thing, m.format, payload, ledger) : judge.judge(m.thing, m.format, payload);
      } catch (err) {
        // the ledger cannot be read: no verdict can be given; the device's report times out and it reports again
        return log(`[${m.thing}] report not judged: ${(err as Error).message}`);
      }
      const answer = responseTopic(m.thing, m.format, r.verdict === 'ACCEPTED' ? 'accepted' : 'rejected');
      client.publish(answer, encodeResponse(responseBody(m.thing, r), m.format), { qos: 1 }, (err) => {
        if (err) log(`[${m.thing}] response to report ${r.exactId} not published: ${err.message}`);
      });
      const what = r.redelivery ? ' (redelivered, answered as before)' : '';
      log(`[${m.thing}] report ${r.exactId ?? '(no id)'} (${m.format}): ${r.verdict}${r.errorCode ? ` ${r.errorCode}: ${r.errorMessage}` : ''}${what}`);
      // a redelivery is not a new report, and a bad name is not a thing: neither is an event
      if (!r.redelivery && !thingNameError(m.thing)) svc.emit('verdict', { thing: m.thing, ...r });
    });
    const granted = await client.subscribeAsync([...filters], { qos: 1 });
    if (granted.some((g) => g.qos !== 1)) throw new Error(`${url} refused the report topic subscriptions at QoS 1`);
    // Again on every reconnect, even to a session the broker says it has: a broker restored from its last save
    // (mosquitto after a crash) can hold the session without the subscription, and would never deliver again.
    // (mqtt.js skips a topic it thinks it holds unless the map says `resubscribe`, as its own reconnect does; it
    // deletes that key from the map, so a new map each time.)
    const again = () => Object.fromEntries([...filters.map((f) => [f, { qos: 1 }]), ['resubscribe', true]]);
    client.on('connect', () => client.subscribe(again(), (err) => err && log(`MQTT: resubscribe failed: ${err.message}`)));
    return svc;
  } catch (err) {
    await shutdown();
    throw err;
  }
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || (isIP(host) === 4 && host.startsWith('127.'));
}

function brokerPort(url: string): number {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new Error(`broker ${JSON.stringify(url)} is not a URL (mqtt://HOST:PORT or mqtts://HOST:PORT)`);
  }
  if (u.protocol !== 'mqtt:' && u.protocol !== 'mqtts:') throw new Error(`broker ${url}: ${u.protocol} is not mqtt: or mqtts:`);
  if (!u.hostname) throw new Error(`broker ${url} has no host`);
  return Number(u.port) || (u.protocol === 'mqtts:' ? 8883 : 1883);
}

/** The collector's persistent session on an external broker; a clear one-line Error when it cannot be had. */
async function attach(url: string, opts: ServiceOptions): Promise<MqttClient> {
  const tls = opts.brokerTls && { ca: readFileSync(opts.brokerTls.caFile), cert: readFileSync(opts.brokerTls.certFile), key: readFileSync(opts.brokerTls.keyFile) };
  try {
    return await mqtt.connectAsync(url, { clientId: opts.clientId ?? 'defender-service', clean: false, reconnectPeriod: 250, connectTimeout: 5000, ...tls }, false);
  } catch (err) {
    throw new Error(`cannot attach to the MQTT broker at ${url}: ${(err as Error).message || (err as any).code || String(err)}`);
  }
}

/** Ends the client, after its in-flight responses are acknowledged (2 s at most, and not if the broker is gone). */
async function endClient(client: MqttClient): Promise<void> {
  const inFlight = () => Object.keys(client.outgoing).length > 0;
  for (const deadline = Date.now() + 2000; client.connected && inFlight() && Date.now() < deadline; ) {
    await new Promise((r) => setTimeout(r, 10));
  }
  await client.endAsync(true);
}
