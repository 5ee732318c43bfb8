// Detect: on every accepted report, its metrics into the store and every applicable behaviour of every security
// profile evaluated; violations raised and cleared by the consecutive-datapoint rules; alerts sent.
//
//   const svc = await startService({ port: 0 });
//   const detect = await attachDetect(svc, { store: openSqlite('defender.db'), profiles: ['profiles/sample.json'] });
//   detect.on('alert', (m) => console.log(m.violationEventType, m.thingName, m.behavior.name));
//   ...
//   await detect.close(); await svc.close();
//
// Reports of one thing are evaluated one after another in arrival order; different things run side by side (with
// PostgreSQL; SQLite is one writer anyway). The evaluation state is in the store, read and written in one
// transaction per report, so a restarted service or a second collector continues the counting.
//
// Cloud-side metrics: with the embedded broker, what it saw of each thing (broker/meter.ts) is taken every
// cloudIntervalSeconds and evaluated as one datapoint per thing, like a report, in the same order per thing.
import { EventEmitter } from 'node:events';
import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import mqtt, { type MqttClient } from 'mqtt';
import { cloudSideWarnings, loadProfile, parseProfile, type Behavior, type Profile } from './profile.ts';
import { METRICS, readMetrics, readUsage, type MetricValue, type Read } from './metrics.ts';
import { judgeValue, measure, step, type ThingState } from './evaluate.ts';
import { Alerts, metricValueOf, type AlertMessage, type AlertOptions } from './alerts.ts';
import type { Commit, Store } from '../store/store.ts';
import type { Meter } from '../broker/meter.ts';

export type { AlertMessage, AlertOptions } from './alerts.ts';

/** What Detect needs of a verdict (service.ts's 'verdict' event). */
export interface AcceptedReport {
  thing: string;
  reportId: number | undefined;
  doc: unknown;
  verdict: string;
  /** Epoch ms the report was judged. */
  at: number;
}

export interface DetectOptions {
  store: Store;
  /** Profiles to load into the store at start: file names (JSON) or parsed documents. Profiles already in the
   * store (from an earlier start, or `cli profile load`) stay. */
  profiles?: (string | Record<string, unknown>)[];
  alerts?: AlertOptions;
  /** The service log (default: none). */
  log?: (line: string) => void;
  /** How long a fleet percentile is reused before it is asked of the store again, ms (default 60000). */
  statisticsRefreshMs?: number;
  /** How often the store is checked for profiles loaded or changed meanwhile, ms (default 5000; 0: never). */
  profileRefreshMs?: number;
  /** Publishes an alert on the broker; attachDetect takes the service's own (embedded broker) or makes a client. */
  publish?: (topic: string, payload: string) => Promise<void>;
  /** On an external mqtts:// broker, the certificate and CA the alert publisher connects with: an identity of its
   * own, not the collector's (mosquitto's use_username_as_clientid would make the two one client, each closing the
   * other); the shipped ACL lets CN defender-detect write defender/alerts/#. */
  alertTls?: { caFile: string; certFile: string; keyFile: string };
  /** The embedded broker's meter (attachDetect takes the service's): without one, behaviours on cloud-side metrics
   * see no datapoints, and say so when loaded. */
  meter?: Meter;
  /** How often the meter's counts become a datapoint per thing, seconds (default 300, AWS's shortest
   * durationSeconds: a durationSeconds of 600 then sums the last two intervals); fractional ok. */
  cloudIntervalSeconds?: number;
}

export interface Detect extends EventEmitter {
  readonly store: Store;
  /** The profiles in force. */
  profiles(): Profile[];
  /** Evaluates one verdict (ignored unless ACCEPTED); resolves with the alerts it raised, once stored. */
  process(v: AcceptedReport): Promise<AlertMessage[]>;
  /** Checks, then loads a profile into the store and into force. */
  loadProfile(p: string | Record<string, unknown>): Promise<Profile>;
  /** Re-reads the profiles from the store. */
  refreshProfiles(): Promise<void>;
  /** Resolves when every report received so far is evaluated. */
  idle(): Promise<void>;
  close(): Promise<void>;
  on(event: 'alert', listener: (m: AlertMessage) => void): this;
  on(event: 'error', listener: (err: Error) => void): this;
}

interface Threshold {
  /** Shared by the reports that ask while it is being computed. */
  value: Promise<number | undefined>;
  at: number;
}

class DetectImpl extends EventEmitter implements Detect {
  private active: Profile[] = [];
  private stamp = '';
  private readonly chains = new Map<string, Promise<unknown>>();
  private readonly thresholds = new Map<string, Threshold>();
  /** Each profile's updatedAt when last read: a profile new or changed is warned about. */
  private readonly loaded = new Map<string, number>();
  private readonly alerts: Alerts;
  private readonly log: (line: string) => void;
  private timer?: NodeJS.Timeout;
  private cloudTimer?: NodeJS.Timeout;
  private closed = false;

  constructor(
    readonly store: Store,
    private readonly opts: DetectOptions,
  ) {
    super();
    this.log = opts.log ?? (() => {});
    this.alerts = new Alerts(opts.alerts ?? {}, opts.publish, this.log);
  }

  async start(): Promise<void> {
    for (const p of this.opts.profiles ?? []) await this.loadProfile(p);
    await this.refreshProfiles();
    const every = this.opts.profileRefreshMs ?? 5000;
    if (every > 0) {
      this.timer = setInterval(() => this.refreshProfiles().catch((err) => this.log(`profiles not re-read: ${err.message}`)), every).unref();
    }
    if (this.opts.meter) this.nextInterval(this.opts.meter, Date.now());
  }

  /** Intervals of zeros a quiet thing still needs: the longest window of a cloud-side behaviour to empty, then its
   * consecutiveDatapointsToClear. */
  private linger(every: number): number {
    let n = 0;
    for (const p of this.active) {
      for (const b of p.behaviors) {
        if (METRICS[b.metric]?.side !== 'cloud' || !b.criteria) continue;
        n = Math.max(n, Math.ceil(((b.criteria.durationSeconds ?? 0) * 1000) / every) + b.criteria.toClear);
      }
    }
    return n;
  }

  /** Schedules the end of the interval that started at `from`: each thing's usage then becomes a datapoint stamped
   * with the interval's end (nominal ends, so that windows of durationSeconds hold whole intervals). */
  private nextInterval(meter: Meter, from: number): void {
    const every = (this.opts.cloudIntervalSeconds ?? 300) * 1000;
    // after a stall longer than an interval, one datapoint for all of it rather than a burst of empty ones
    const end = Math.max(from + every, Date.now());
    this.cloudTimer = setTimeout(() => {
      for (const [thing, usage] of meter.take(this.linger(every))) void this.chain(thing, () => this.run(thing, end, readUsage(usage))).catch(() => {});
      this.nextInterval(meter, end);
    }, end - Date.now());
  }

  profiles(): Profile[] {
    return this.active;
  }

  async loadProfile(p: string | Record<string, unknown>): Promise<Profile> {
    const profile = typeof p === 'string' ? loadProfile(p) : parseProfile(p);
    for (const w of profile.warnings) this.log(`profile ${profile.name}: ${w}`);
    await this.store.putProfile(profile.name, profile.stored);
    await this.refreshProfiles();
    return profile;
  }

  async refreshProfiles(): Promise<void> {
    const rows = await this.store.profiles();
    const stamp = rows.map((r) => `${r.name}@${r.updatedAt}`).join(',');
    if (stamp === this.stamp) return;
    const next: Profile[] = [];
    for (const r of rows) {
      try {
        next.push(parseProfile(r.doc));
      } catch (err) {
        this.log(`profile ${r.name} in the store is not valid, not applied: ${(err as Error).message}`);
      }
    }
    if (!this.opts.meter) {
      for (const r of rows) {
        const p = next.find((x) => x.name === r.name);
        if (p && this.loaded.get(r.name) !== r.updatedAt) for (const w of cloudSideWarnings(p)) this.log(`profile ${p.name}: ${w}`);
      }
    }
    this.loaded.clear();
    for (const r of rows) this.loaded.set(r.name, r.updatedAt);
    this.stamp = stamp;
    this.active = next;
    this.thresholds.clear();
    this.log(`security profiles in force: ${next.map((p) => `${p.name} (${p.behaviors.length} behaviours)`).join(', ') || 'none'}`);
  }

  process(v: AcceptedReport): Promise<AlertMessage[]> {
    if (v.verdict !== 'ACCEPTED' || v.reportId === undefined || this.closed) return Promise.resolve([]);
    return this.chain(v.thing, () => this.run(v.thing, v.at, readMetrics(v.doc), v.reportId));
  }

  /** Runs `job` after the thing's earlier ones. */
  private chain(thing: string, job: () => Promise<AlertMessage[]>): Promise<AlertMessage[]> {
    const before = this.chains.get(thing) ?? Promise.resolve();
    const run = before.then(job);
    const tail = run.catch((err) => {
      this.log(`[${thing}] datapoints not evaluated: ${err.message}`);
      if (this.listenerCount('error')) this.emit('error', err);
    });
    this.chains.set(thing, tail);
    void tail.then(() => {
      if (this.chains.get(thing) === tail) this.chains.delete(thing);
    });
    return run;
  }

  async idle(): Promise<void> {
    while (this.chains.size) await Promise.all([...this.chains.values()]);
  }

  /** The fleet's value at the behaviour's percentile, asked of the store at most once per statisticsRefreshMs. */
  private async threshold(p: Profile, b: Behavior, now: number): Promise<number | undefined> {
    const key = `${p.name}/${b.name}`;
    const ttl = this.opts.statisticsRefreshMs ?? 60_000;
    const t = this.thresholds.get(key);
    if (t && now - t.at < ttl) return t.value;
    // the window: durationSeconds, or (without one) the retention: each thing's latest datapoint counts
    const since = now - (b.criteria!.durationSeconds ?? this.store.retentionDays * 86_400) * 1000;
    const value = this.store.percentile(p.name, b.name, b.criteria!.percentile!, since);
    this.thresholds.set(key, { value, at: now });
    const v = await value.catch((err) => {
      this.thresholds.delete(key);
      throw err;
    });
    // no fleet data yet: ask again at the next report rather than wait a whole refresh
    if (v === undefined && this.thresholds.get(key)?.value === value) this.thresholds.delete(key);
    return v;
  }

  /** Evaluates the datapoints of a report (`reportId`) or of a broker interval (none). */
  private async run(thing: string, at: number, read: Read, reportId?: number): Promise<AlertMessage[]> {
    const profiles = this.active.filter((p) => !p.things || p.things.has(thing));
    const fleet = new Map<Behavior, number | undefined>();
    for (const p of profiles) {
      for (const b of p.behaviors) if (b.criteria?.percentile !== undefined) fleet.set(b, await this.threshold(p, b, at));
    }
    const alerts: AlertMessage[] = [];
    const commit = await this.store.update(thing, (state: ThingState): Commit | null => {
      const c: Commit = { state, violations: [], samples: [] };
      if (reportId !== undefined) {
        if (state.lastReportId !== undefined && reportId <= state.lastReportId) return null;
        c.report = { reportId, at, metrics: read.values };
        state.lastReportId = reportId;
        state.lastAt = at;
      } else {
        // AWS measures the things of its registry: here, those that reported once, or a profile names (a client id
        // is anything a client says)
        if (state.lastReportId === undefined && !profiles.some((p) => p.things?.has(thing))) return null;
        c.cloud = { at, metrics: read.values };
      }
      alerts.length = 0;
      for (const p of profiles) {
        for (const b of p.behaviors) {
          if (!b.criteria) continue;
          const key = `${p.name}/${b.name}`;
          const st = (state.b[key] ??= { a: 0, c: 0 });
          const value = measure(b, read, at, st);
          if (value === undefined) continue;
          if (b.criteria.percentile !== undefined) c.samples.push({ profile: p.name, behavior: b.name, at, value: value as number });
          const dp = judgeValue(b.criteria, value, fleet.get(b));
          if (!dp) continue;
          const t = step(b.criteria, st, dp.violating);
          if (t === 'raise') {
            st.v = randomUUID();
            st.s = at;
            c.violations.push({
              kind: 'open',
              violation: { id: st.v, thing, profile: p.name, behavior: b.name, metric: b.metric, startedAt: at, endedAt: null, lastValue: value, lastAt: at, behaviorDoc: b.raw },
            });
            if (!b.suppressAlerts) alerts.push(this.message('in-alarm', st.v, thing, p, b, value, at, at, reportId));
          } else if (t === 'update') {
            c.violations.push({ kind: 'update', id: st.v!, at, value });
          } else if (t === 'clear') {
            c.violations.push({ kind: 'close', id: st.v!, at, value });
            // (a state stored before `s` was kept has no start: the clear's time, as before)
            if (!b.suppressAlerts) alerts.push(this.message('alarm-cleared', st.v!, thing, p, b, value, at, st.s, reportId));
            delete st.v;
            delete st.s;
          }
        }
      }
      return c;
    });
    if (!commit) return [];
    for (const m of alerts) {
      this.emit('alert', m);
      void this.alerts.send(m);
    }
    return alerts;
  }

  private message(type: AlertMessage['violationEventType'], id: string, thing: string, p: Profile, b: Behavior, value: MetricValue, at: number, started: number | undefined, reportId: number | undefined): AlertMessage {
    return {
      violationId: id,
      thingName: thing,
      securityProfileName: p.name,
      behavior: b.raw,
      violationEventType: type,
      metricValue: metricValueOf(b, value),
      violationEventTime: at,
      violationStartTime: started ?? at,
      ...(reportId === undefined ? {} : { reportId }),
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    clearTimeout(this.cloudTimer);
    await this.idle();
    await this.alerts.close();
  }
}

/** Detect on its own (no service): feed it with process(); its close() leaves the store open. */
export async function createDetect(opts: DetectOptions): Promise<Detect> {
  const d = new DetectImpl(opts.store, opts);
  await d.start();
  return d;
}

/** What attachDetect needs of the service (service.ts's Service). */
export interface VerdictSource {
  readonly url: string;
  /** The embedded broker's meter; none on an external broker. */
  readonly meter?: Meter;
  /** Publishes as the embedded broker itself; none on an external broker. */
  readonly publish?: (topic: string, payload: string) => Promise<void>;
  on(event: 'verdict', listener: (v: any) => void): unknown;
  off(event: 'verdict', listener: (v: any) => void): unknown;
}

/**
 * Detect on a running service: every 'verdict' it emits is evaluated, and alerts are published on its broker: by
 * the embedded broker itself, or on an external one by a client of our own (which that broker's ACL must let
 * publish there). close() stops listening, finishes the reports received, then closes the store.
 */
export async function attachDetect(service: VerdictSource, opts: DetectOptions): Promise<Detect> {
  let client: MqttClient | undefined;
  let publish = opts.publish ?? service.publish;
  if (!publish && opts.alerts?.topic !== false) {
    // a client of its own, so that a broker refusing an alert by closing the connection (aedes does) does not cut
    // the collector off
    const tls = opts.alertTls && { ca: readFileSync(opts.alertTls.caFile), cert: readFileSync(opts.alertTls.certFile), key: readFileSync(opts.alertTls.keyFile) };
    client = await mqtt.connectAsync(service.url, { clientId: `defender-detect-${process.pid}-${randomBytes(3).toString('hex')}`, reconnectPeriod: 1000, connectTimeout: 5000, ...tls }, false);
    const c = client;
    c.on('error', (err) => opts.log?.(`detect MQTT: ${err.message}`));
    // a broker that refuses a publish may just close the connection (MQTT 3.1.1 has no negative PUBACK)
    c.on('close', () => {
      const n = Object.keys(c.outgoing).length;
      if (n) opts.log?.(`detect MQTT: connection to ${service.url} closed with ${n} alert(s) unacknowledged (does the broker let this client publish alerts?)`);
    });
    publish = async (topic, payload) => {
      await c.publishAsync(topic, payload, { qos: 1 });
    };
  }
  let d: DetectImpl;
  try {
    d = new DetectImpl(opts.store, { meter: service.meter, ...opts, publish });
    await d.start();
  } catch (err) {
    await client?.endAsync(true);
    throw err;
  }
  const onVerdict = (v: AcceptedReport) => void d.process(v).catch(() => {});
  service.on('verdict', onVerdict);
  const close = d.close.bind(d);
  d.close = async () => {
    service.off('verdict', onVerdict);
    await close();
    // what is still in flight was given up (and logged) by close()
    await client?.endAsync(true);
    await opts.store.close();
  };
  return d;
}
