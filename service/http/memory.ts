// FleetData kept in memory, from the service's 'verdict' events: what `npm start` shows until a store is attached.
// Bounded: at most `maxThings` things (the one quiet longest is forgotten first), `points` accepted reports and
// `rejectedKept` rejected ones per thing, `violationsKept` cleared violations. Nothing survives a restart.
//
// Without the Detect engine there are no security profiles: this adapter evaluates one fixed rule of its own
// (established TCP connections greater than `maxConnections`, raised on the first violating report and cleared on
// the first good one), shown as the profile FIXED_PROFILE so that the dashboard's violation views have something
// true to show. A store with the Detect engine replaces it.
import { EventEmitter } from 'node:events';
import type { FleetData, FleetEvent, LatestReport, Point, Profile, RejectedReport, ThingSummary, Violation } from './data.ts';
import type { VerdictEvent } from '../service.ts';
import { reportMetrics } from './report.ts';

export const FIXED_PROFILE = 'in-memory-fixed-rule';
const CONNECTIONS = 'aws:num-established-tcp-connections';

export interface MemoryOptions {
  maxThings?: number;
  points?: number;
  rejectedKept?: number;
  violationsKept?: number;
  /** The fixed rule's threshold (default 5); null for no rule. */
  maxConnections?: number | null;
  now?: () => number;
}

/** What the adapter listens to: a Service, or anything else that emits its 'verdict' events. */
export interface VerdictSource {
  on(event: 'verdict', listener: (v: VerdictEvent) => void): unknown;
  off(event: 'verdict', listener: (v: VerdictEvent) => void): unknown;
}

interface Thing {
  latest: LatestReport;
  /** Accepted reports: times and each metric's values (NaN where that report had none), oldest first. */
  times: number[];
  values: Map<string, number[]>;
  rejected: RejectedReport[];
  /** Times of the reports of the last hour, either verdict. */
  recent: number[];
  active?: Violation;
}

export class MemoryFleet implements FleetData {
  private readonly data = new Map<string, Thing>();
  private readonly past: Violation[] = [];
  private readonly bus = new EventEmitter();
  private readonly o: Required<MemoryOptions>;
  private nextId = 1;
  private readonly onVerdict = (v: VerdictEvent) => this.add(v);

  constructor(private readonly source?: VerdictSource, opts: MemoryOptions = {}) {
    this.o = { maxThings: 20_000, points: 720, rejectedKept: 50, violationsKept: 1000, maxConnections: 5, now: Date.now, ...opts };
    this.bus.setMaxListeners(0);
    source?.on('verdict', this.onVerdict);
  }

  /** Stops listening to the source. */
  close(): void {
    this.source?.off('verdict', this.onVerdict);
  }

  /** Takes one verdict (what the source's 'verdict' event carries). */
  add(v: VerdictEvent): void {
    let t = this.data.get(v.thing);
    if (t) this.data.delete(v.thing); // re-inserted below: the map's first key is the thing quiet longest
    else {
      t = { latest: undefined as any, times: [], values: new Map(), rejected: [], recent: [] };
      if (this.data.size >= this.o.maxThings) this.forget(this.data.keys().next().value!);
    }
    this.data.set(v.thing, t);
    t.latest = { at: v.at, reportId: v.reportId, format: v.format, verdict: v.verdict, errorCode: v.errorCode, doc: v.doc };
    t.recent.push(v.at);
    while (t.recent[0] < v.at - 3600_000) t.recent.shift();
    if (v.verdict === 'REJECTED') {
      t.rejected.unshift({ at: v.at, reportId: v.reportId, errorCode: v.errorCode ?? '', errorMessage: v.errorMessage ?? '' });
      t.rejected.length = Math.min(t.rejected.length, this.o.rejectedKept);
    } else {
      const m = reportMetrics(v.doc);
      const n = t.times.push(v.at);
      for (const name of Object.keys(m)) if (!t.values.has(name)) t.values.set(name, new Array(n - 1).fill(NaN));
      for (const [name, list] of t.values) list.push(m[name] ?? NaN);
      if (n > this.o.points) {
        t.times.shift();
        for (const list of t.values.values()) list.shift();
      }
      this.rule(t, v.thing, m, v.at);
    }
    this.emit({ type: 'report', thing: v.thing, at: v.at, verdict: v.verdict, errorCode: v.errorCode, reportId: v.reportId });
  }

  things(only?: string): ThingSummary[] {
    const hourAgo = this.o.now() - 3600_000;
    const out: ThingSummary[] = [];
    const one = only === undefined ? undefined : this.data.get(only);
    const list: Iterable<[string, Thing]> = only === undefined ? this.data : one ? [[only, one]] : [];
    for (const [thing, t] of list) {
      let recent = 0;
      for (let i = t.recent.length - 1; i >= 0 && t.recent[i] >= hourAgo; i--) recent++;
      out.push({
        thing,
        lastAt: t.latest.at,
        lastVerdict: t.latest.verdict,
        lastErrorCode: t.latest.errorCode,
        reportsLastHour: recent,
        period: period(t.times),
        activeViolations: t.active ? 1 : 0,
      });
    }
    return out;
  }

  metrics(thing: string): string[] {
    return [...(this.data.get(thing)?.values.keys() ?? [])];
  }

  series(thing: string, metric: string, from: number, to: number): Point[] {
    const t = this.data.get(thing);
    const list = t?.values.get(metric);
    if (!t || !list) return [];
    const out: Point[] = [];
    t.times.forEach((at, i) => {
      if (at >= from && at <= to && !Number.isNaN(list[i])) out.push([at, list[i]]);
    });
    return out;
  }

  latest(thing: string): LatestReport | undefined {
    return this.data.get(thing)?.latest;
  }

  rejected(thing: string, limit: number): RejectedReport[] {
    return (this.data.get(thing)?.rejected ?? []).slice(0, limit);
  }

  violations(q: { active?: boolean; thing?: string; limit: number }): Violation[] {
    const active: Violation[] = [];
    if (q.active !== false) for (const t of this.data.values()) if (t.active) active.push(t.active);
    active.sort((a, b) => b.startedAt - a.startedAt);
    const all = q.active === true ? active : active.concat(this.past);
    return all.filter((v) => q.thing === undefined || v.thing === q.thing).slice(0, q.limit);
  }

  profiles(): Profile[] {
    if (this.o.maxConnections === null) return [];
    return [
      {
        name: FIXED_PROFILE,
        behaviors: [{ name: 'too-many-connections', metric: CONNECTIONS, criteria: `greater-than ${this.o.maxConnections}` }],
        targets: 'all things',
        warnings: ['the fixed rule of the in-memory adapter: no Detect engine is attached, no security profile is loaded'],
      },
    ];
  }

  subscribe(listener: (e: FleetEvent) => void): () => void {
    this.bus.on('event', listener);
    return () => this.bus.off('event', listener);
  }

  private emit(e: FleetEvent): void {
    this.bus.emit('event', e);
  }

  private rule(t: Thing, thing: string, m: Record<string, number>, at: number): void {
    const limit = this.o.maxConnections;
    const value = m[CONNECTIONS];
    if (limit === null || value === undefined) return;
    if (value > limit) {
      if (t.active) t.active.value = value;
      else {
        t.active = { id: String(this.nextId++), thing, profile: FIXED_PROFILE, behavior: 'too-many-connections', metric: CONNECTIONS, value, startedAt: at };
        this.emit({ type: 'violation', state: 'raised', violation: { ...t.active } });
      }
    } else if (t.active) {
      const done = { ...t.active, endedAt: at };
      t.active = undefined;
      this.keepPast(done);
      this.emit({ type: 'violation', state: 'cleared', violation: done });
    }
  }

  private keepPast(v: Violation): void {
    this.past.unshift(v);
    this.past.length = Math.min(this.past.length, this.o.violationsKept);
  }

  private forget(thing: string): void {
    const t = this.data.get(thing)!;
    this.data.delete(thing);
    if (t.active) this.keepPast({ ...t.active, endedAt: this.o.now() });
  }
}

/** The median gap in seconds between the last accepted reports (up to 11 of them); undefined before two. */
function period(times: number[]): number | undefined {
  const last = times.slice(-11);
  if (last.length < 2) return undefined;
  const gaps = last.slice(1).map((t, i) => t - last[i]).sort((a, b) => a - b);
  return gaps[gaps.length >> 1] / 1000;
}
