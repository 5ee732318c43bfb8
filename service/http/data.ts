// What the dashboard shows, as one interface: FleetData. The HTTP server (server.ts) asks only this; the in-memory
// adapter (memory.ts) implements it over the service's 'verdict' events, and a store (SQLite, PostgreSQL) implements
// it with a handful of queries. No Node import: the page (web/) imports these types too.
//
// Times are epoch milliseconds. Every method may answer synchronously or with a promise.

export type Verdict = 'ACCEPTED' | 'REJECTED';

/** One row of the fleet table. */
export interface ThingSummary {
  thing: string;
  /** The last report, of either verdict. */
  lastAt: number;
  lastVerdict: Verdict;
  /** The last report's error code, when it was rejected. */
  lastErrorCode?: string;
  /** Reports (either verdict) received in the hour before now. */
  reportsLastHour: number;
  /** Seconds between the thing's reports (the median gap of its recent accepted reports); undefined before two. */
  period?: number;
  /** Violations of this thing not yet cleared. */
  activeViolations: number;
}

/** A metric's value at one time: [epoch ms, value]. */
export type Point = [number, number];

/** The last report a thing sent, as decoded (long or short tags, as the device wrote them). */
export interface LatestReport {
  at: number;
  reportId?: number;
  format: 'cbor' | 'json';
  verdict: Verdict;
  errorCode?: string;
  /** The decoded document (undefined when it did not decode). */
  doc: unknown;
}

export interface RejectedReport {
  at: number;
  reportId?: number;
  errorCode: string;
  errorMessage: string;
}

export interface Violation {
  id: string;
  thing: string;
  profile: string;
  behavior: string;
  metric: string;
  /** The value that raised it, or its last value while active (a number, or a list for a set metric). */
  value: unknown;
  startedAt: number;
  /** When it cleared; undefined while active. */
  endedAt?: number;
}

export interface ProfileBehavior {
  name: string;
  /** AWS's metric name (aws:num-established-tcp-connections, ...) or a custom metric's name. */
  metric: string;
  /** The rule in words, e.g. "greater-than 5"; undefined for a behaviour that only retains the metric. */
  criteria?: string;
}

export interface Profile {
  name: string;
  behaviors: ProfileBehavior[];
  /** "all things", or the thing names / group it applies to. */
  targets: string;
  /** Problems met when loading it (unknown fields ignored, ...). */
  warnings: string[];
}

export type FleetEvent =
  | { type: 'report'; thing: string; at: number; verdict: Verdict; errorCode?: string; reportId?: number }
  | { type: 'violation'; state: 'raised' | 'cleared'; violation: Violation };

type Maybe<T> = T | Promise<T>;

export interface FleetData {
  /** Every thing that has reported, or only the one named (an empty list when it never reported). */
  things(thing?: string): Maybe<ThingSummary[]>;
  /** The metric names a thing has values for: the aws:* device metrics and its custom number metrics. */
  metrics(thing: string): Maybe<string[]>;
  /** A metric's values from accepted reports with from <= at <= to, oldest first. */
  series(thing: string, metric: string, from: number, to: number): Maybe<Point[]>;
  /** The thing's last report; undefined for an unknown thing. */
  latest(thing: string): Maybe<LatestReport | undefined>;
  /** Its most recent rejected reports, newest first, at most `limit`. */
  rejected(thing: string, limit: number): Maybe<RejectedReport[]>;
  /** Violations, newest first, at most `limit`: active ones only (active: true), cleared ones only (false), or both;
   * of one thing when `thing` is given. */
  violations(q: { active?: boolean; thing?: string; limit: number }): Maybe<Violation[]>;
  /** The loaded security profiles. */
  profiles(): Maybe<Profile[]>;
  /** Calls `listener` on every report and every violation raised or cleared; returns the unsubscribe. */
  subscribe(listener: (e: FleetEvent) => void): () => void;
}

/** The device-side metrics charted for every thing (AWS's names, as security profiles use them). */
export const DEVICE_METRICS = [
  'aws:num-established-tcp-connections',
  'aws:all-bytes-in',
  'aws:all-bytes-out',
  'aws:all-packets-in',
  'aws:all-packets-out',
  'aws:num-listening-tcp-ports',
  'aws:num-listening-udp-ports',
] as const;

/** Gone quiet: no report for more than two periods. */
export function isQuiet(lastAt: number, period: number | undefined, now: number): boolean {
  return period !== undefined && now - lastAt > 2 * period * 1000;
}
