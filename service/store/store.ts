// The store: every accepted report's metrics, the broker's cloud-side metrics, each thing's evaluation state, violations, the fleet's samples for
// statistical thresholds, and the security profiles. One interface; SQLite (sqlite.ts, the default: one file, no
// server) and PostgreSQL (postgres.ts, for several collectors) behind it.
//
// A thing's state is read, evaluated and written in one transaction holding that thing's row (update()): two
// collectors handed consecutive reports of one thing do not interleave, and a report id already evaluated is
// not evaluated again. The store is also the judge's Ledger: each thing's last accepted report, claimed by one
// conditional statement, so that collectors sharing the report topics accept each report once.
import type { MetricValue } from '../detect/metrics.ts';
import type { Ledger } from '../judge.ts';
import type { ThingState } from '../detect/evaluate.ts';

export type { ThingState };

export interface Violation {
  /** A UUID. */
  id: string;
  thing: string;
  profile: string;
  behavior: string;
  metric: string;
  /** Epoch ms. */
  startedAt: number;
  /** Epoch ms; null while active. */
  endedAt: number | null;
  /** The last datapoint's value (while active: the last violating one; once cleared: the one that cleared it). */
  lastValue: MetricValue;
  lastAt: number;
  /** The behaviour as written in its profile. */
  behaviorDoc: Record<string, unknown>;
}

export type ViolationChange =
  | { kind: 'open'; violation: Violation }
  | { kind: 'update' | 'close'; id: string; at: number; value: MetricValue };

export interface Sample {
  profile: string;
  behavior: string;
  at: number;
  value: number;
}

/** What evaluating one report, or one broker interval, writes. */
export interface Commit {
  state: ThingState;
  /** A report's metrics. */
  report?: { reportId: number; at: number; metrics: Record<string, MetricValue> };
  /** The cloud-side metrics of a thing's broker interval ending at `at`. */
  cloud?: CloudRow;
  violations: ViolationChange[];
  /** Datapoints of behaviours with a statisticalThreshold: the fleet's distribution. */
  samples: Sample[];
}

export interface ThingRow {
  thing: string;
  lastReportId: number | null;
  lastAt: number | null;
  /** Violations now active. */
  active: number;
}

export interface ReportRow {
  reportId: number;
  at: number;
  metrics: Record<string, MetricValue>;
}

export interface CloudRow {
  at: number;
  metrics: Record<string, MetricValue>;
}

export interface StoredProfile {
  name: string;
  doc: Record<string, unknown>;
  updatedAt: number;
}

export interface Store extends Ledger {
  readonly kind: 'sqlite' | 'postgres';
  /** Days of reports and of cleared violations kept. */
  readonly retentionDays: number;
  /** Reads the thing's state, lets `evaluate` decide, and writes what it returns, atomically. `evaluate` returning
   * null writes nothing (a report already evaluated). */
  update(thing: string, evaluate: (state: ThingState) => Commit | null): Promise<Commit | null>;
  /** The fleet's value at percentile p (0..1, nearest rank) among samples taken since `since`. */
  percentile(profile: string, behavior: string, p: number, since: number): Promise<number | undefined>;
  putProfile(name: string, doc: Record<string, unknown>): Promise<void>;
  deleteProfile(name: string): Promise<boolean>;
  profiles(): Promise<StoredProfile[]>;
  things(): Promise<ThingRow[]>;
  /** A thing's reports, oldest first, between `since` and `until` (epoch ms), at most `limit` (the newest). */
  reports(thing: string, opts?: { since?: number; until?: number; limit?: number }): Promise<ReportRow[]>;
  /** A thing's cloud-side metrics, a row per broker interval, oldest first, as `reports` takes them. */
  cloudMetrics(thing: string, opts?: { since?: number; until?: number; limit?: number }): Promise<CloudRow[]>;
  /** Violations, newest first: active ones only, or all (history) with `all`. */
  violations(opts?: { all?: boolean; thing?: string }): Promise<Violation[]>;
  /** Deletes reports, cloud-side metrics, cleared violations and samples older than the retention; returns how many rows went. */
  prune(now?: number): Promise<number>;
  close(): Promise<void>;
}

export interface StoreOptions {
  /** Days kept (default 30). */
  retentionDays?: number;
  /** How often to prune, ms (default hourly); 0: only at open and when asked. */
  pruneEveryMs?: number;
}

export const DAY = 86_400_000;

export function retentionOf(opts: StoreOptions): number {
  const days = opts.retentionDays ?? 30;
  if (!(days > 0)) throw new RangeError('retentionDays is a number of days above 0');
  return days;
}

/** A fresh thing's state. */
export const emptyState = (): ThingState => ({ b: {} });

/** Opens the store a URL or path names: postgres://... -> PostgreSQL, anything else -> a SQLite file. */
export async function openStore(where: string, opts: StoreOptions = {}): Promise<Store> {
  if (/^postgres(ql)?:\/\//.test(where)) {
    const { openPostgres } = await import('./postgres.ts');
    return openPostgres(where, opts);
  }
  const { openSqlite } = await import('./sqlite.ts');
  return openSqlite(where, opts);
}
