// FleetData over the Detect engine and its store: what `npm start` shows. The store holds what Detect keeps (the
// metrics of accepted reports as Detect reads them, violations, profiles): charts, violations and profiles come
// from it, so the dashboard shows the numbers the rules judged. It keeps neither rejected reports nor documents, so
// the last report, the rejected ones and the report counts come from a MemoryFleet (without its fixed rule) on the
// same service, rather than a wider store schema. After a restart a thing shows its stored history and
// violations, and its last report once it reports again.
import type { FleetData, FleetEvent, LatestReport, Point, Profile, RejectedReport, ThingSummary, Violation } from './data.ts';
import { MemoryFleet, type VerdictSource } from './memory.ts';
import type { AlertMessage, Detect } from '../detect/detect.ts';
import type { Behavior, Profile as DetectProfile } from '../detect/profile.ts';
import type { Violation as StoredViolation } from '../store/store.ts';

export interface StoreFleetOptions {
  /** Points at most in one series answer: the newest (default 10,000; a week at one report a minute). */
  maxPoints?: number;
  now?: () => number;
}

export class StoreFleet implements FleetData {
  readonly memory: MemoryFleet;
  private readonly maxPoints: number;
  private readonly now: () => number;

  constructor(
    private readonly detect: Detect,
    source: VerdictSource,
    opts: StoreFleetOptions = {},
  ) {
    this.memory = new MemoryFleet(source, { maxConnections: null });
    this.maxPoints = opts.maxPoints ?? 10_000;
    this.now = opts.now ?? Date.now;
  }

  close(): void {
    this.memory.close();
  }

  async things(only?: string): Promise<ThingSummary[]> {
    const stored = (await this.detect.store.things()).filter((r) => only === undefined || r.thing === only);
    const live = new Map(this.memory.things(only).map((t) => [t.thing, t]));
    const out: ThingSummary[] = [];
    const hourAgo = this.now() - 3600_000;
    for (const r of stored) {
      const m = live.get(r.thing);
      live.delete(r.thing);
      if (m) out.push({ ...m, activeViolations: r.active });
      else if (r.lastAt !== null) {
        // known only from the store (reported before a restart): its accepted reports
        const recent = await this.detect.store.reports(r.thing, { since: hourAgo });
        const last = await this.detect.store.reports(r.thing, { limit: 11 });
        out.push({ thing: r.thing, lastAt: r.lastAt, lastVerdict: 'ACCEPTED', reportsLastHour: recent.length, period: period(last.map((x) => x.at)), activeViolations: r.active });
      }
    }
    // reported, but nothing accepted stored yet (every report rejected, or not yet evaluated)
    for (const m of live.values()) out.push(m);
    return out;
  }

  async metrics(thing: string): Promise<string[]> {
    const names = new Set<string>();
    for (const r of await this.detect.store.reports(thing, { limit: 20 })) {
      for (const [name, v] of Object.entries(r.metrics)) if (typeof v === 'number') names.add(name);
    }
    return [...names];
  }

  async series(thing: string, metric: string, from: number, to: number): Promise<Point[]> {
    const out: Point[] = [];
    for (const r of await this.detect.store.reports(thing, { since: from, until: to, limit: this.maxPoints })) {
      const v = r.metrics[metric];
      if (typeof v === 'number') out.push([r.at, v]);
    }
    return out;
  }

  latest(thing: string): LatestReport | undefined {
    return this.memory.latest(thing);
  }

  rejected(thing: string, limit: number): RejectedReport[] {
    return this.memory.rejected(thing, limit);
  }

  async violations(q: { active?: boolean; thing?: string; limit: number }): Promise<Violation[]> {
    const rows = await this.detect.store.violations({ all: q.active !== true, thing: q.thing });
    const active = rows.filter((v) => v.endedAt === null);
    const cleared = q.active === true ? [] : rows.filter((v) => v.endedAt !== null);
    return (q.active === false ? cleared : active.concat(cleared)).slice(0, q.limit).map(fromStore);
  }

  profiles(): Profile[] {
    return this.detect.profiles().map(profileOf);
  }

  subscribe(listener: (e: FleetEvent) => void): () => void {
    const off = this.memory.subscribe((e) => e.type === 'report' && listener(e));
    // Detect tells of a raise or a clear through its alerts (a behaviour with suppressAlerts shows on the next fetch)
    const onAlert = (m: AlertMessage) => listener({ type: 'violation', state: m.violationEventType === 'in-alarm' ? 'raised' : 'cleared', violation: fromAlert(m) });
    this.detect.on('alert', onAlert);
    return () => {
      off();
      this.detect.off('alert', onAlert);
    };
  }
}

function fromStore(v: StoredViolation): Violation {
  return { id: v.id, thing: v.thing, profile: v.profile, behavior: v.behavior, metric: v.metric, value: v.lastValue, startedAt: v.startedAt, endedAt: v.endedAt ?? undefined };
}

function fromAlert(m: AlertMessage): Violation {
  const b = m.behavior as { name?: string; metric?: string };
  return {
    id: m.violationId,
    thing: m.thingName,
    profile: m.securityProfileName,
    behavior: String(b.name),
    metric: String(b.metric),
    // AWS's MetricValue has one key ({count: 4}, {cidrs: [...]}): the dashboard shows the value itself
    value: Object.values(m.metricValue)[0],
    startedAt: m.violationStartTime,
    endedAt: m.violationEventType === 'in-alarm' ? undefined : m.violationEventTime,
  };
}

function profileOf(p: DetectProfile): Profile {
  return {
    name: p.name,
    behaviors: p.behaviors.map((b) => ({ name: b.name, metric: b.metric, criteria: criteriaWords(b) })),
    targets: p.things ? [...p.things].join(', ') : 'all things',
    warnings: p.warnings,
  };
}

/** The rule in words: "less-than-equals 3", "in-cidr-set 127.0.0.0/8 over 300 s for 2 datapoints". */
export function criteriaWords(b: Behavior): string | undefined {
  const c = b.criteria;
  if (!c) return undefined;
  const what = c.statistic !== undefined ? `the fleet's ${c.statistic}` : c.set !== undefined ? c.set.join(' ') : String(c.threshold);
  const parts = [`${c.op} ${what}`];
  if (c.durationSeconds !== undefined) parts.push(`over ${c.durationSeconds} s`);
  if (c.toAlarm > 1) parts.push(`for ${c.toAlarm} datapoints`);
  if (c.toClear > 1) parts.push(`(${c.toClear} to clear)`);
  return parts.join(' ');
}

/** The median gap in seconds between the given times (oldest first); undefined before two. */
function period(times: number[]): number | undefined {
  if (times.length < 2) return undefined;
  const gaps = times.slice(1).map((t, i) => t - times[i]).sort((a, b) => a - b);
  return gaps[gaps.length >> 1] / 1000;
}
