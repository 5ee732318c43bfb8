// One datapoint of one behaviour for one thing, and the consecutive-datapoint rule that turns datapoints into
// violations raised and cleared. Pure: the state is a plain object the store keeps (so that a restarted service,
// or another collector, continues the counting), the fleet's percentile comes in as an argument.
//
// AWS's semantics (BehaviorCriteria, StatisticalThreshold): the criteria describe what is NORMAL; a datapoint that
// does not meet them is violating. A violation starts after consecutiveDatapointsToAlarm violating datapoints in a
// row and clears after consecutiveDatapointsToClear normal ones in a row.
import { BlockList } from 'node:net';
import { METRICS, type MetricValue, type Read } from './metrics.ts';
import { parseCidr, type Behavior, type Criteria } from './profile.ts';

/** What the store keeps per thing, profile and behaviour. */
export interface BehaviorState {
  /** Violating datapoints in a row (while not in alarm). */
  a: number;
  /** Normal datapoints in a row (while in alarm). */
  c: number;
  /** The open violation's id. */
  v?: string;
  /** When the open violation started (epoch ms): its alarm-cleared alert carries it, as AWS's does. */
  s?: number;
  /** With durationSeconds on a counter: [epoch ms, delta] of the reports inside the window. */
  w?: [number, number][];
}

/** What the store keeps per thing. */
export interface ThingState {
  /** The last report evaluated: a report id not above it is not evaluated again. */
  lastReportId?: number;
  lastAt?: number;
  /** By `${profile}/${behavior}` (neither name can hold a "/"). */
  b: Record<string, BehaviorState>;
}

export interface Datapoint {
  /** What was compared: the reported value, or its sum over durationSeconds. */
  value: MetricValue;
  violating: boolean;
}

export type Transition = 'raise' | 'clear' | 'update' | undefined;

const sets = new WeakMap<Criteria, BlockList | Set<string | number>>();

/** The criteria's set, built once: a BlockList for CIDRs (node:net), a Set otherwise. */
function setOf(c: Criteria): BlockList | Set<string | number> {
  let s = sets.get(c);
  if (!s) {
    if (c.op === 'in-cidr-set' || c.op === 'not-in-cidr-set') {
      const bl = new BlockList();
      for (const cidr of c.set as string[]) {
        const { addr, prefix, family } = parseCidr(cidr, 'cidrs');
        bl.addSubnet(addr, prefix, family);
      }
      s = bl;
    } else s = new Set(c.set);
    sets.set(c, s);
  }
  return s;
}

/** Addresses already checked against a BlockList (check() builds a SocketAddress each time: slow per report, and
 * a fleet's devices talk to few addresses). Bounded: cleared when full. */
const checked = new WeakMap<BlockList, Map<string, boolean>>();
const CHECKED_MAX = 10_000;

function has(s: BlockList | Set<string | number>, x: string | number): boolean {
  if (s instanceof Set) return s.has(x);
  const addr = String(x);
  let memo = checked.get(s);
  if (!memo) checked.set(s, (memo = new Map()));
  let r = memo.get(addr);
  if (r === undefined) {
    r = s.check(addr, addr.includes(':') ? 'ipv6' : 'ipv4');
    if (memo.size >= CHECKED_MAX) memo.clear();
    memo.set(addr, r);
  }
  return r;
}

/** Whether a value meets the criteria (is normal). */
export function normal(c: Criteria, value: MetricValue, threshold = c.threshold): boolean {
  switch (c.op) {
    case 'less-than':
      return (value as number) < threshold!;
    case 'less-than-equals':
      return (value as number) <= threshold!;
    case 'greater-than':
      return (value as number) > threshold!;
    case 'greater-than-equals':
      return (value as number) >= threshold!;
    case 'in-cidr-set':
    case 'in-port-set':
    case 'in-set': {
      const s = setOf(c);
      return (value as (string | number)[]).every((x) => has(s, x));
    }
    default: {
      const s = setOf(c);
      return !(value as (string | number)[]).some((x) => has(s, x));
    }
  }
}

/**
 * The behaviour's value in this report (or broker interval), or undefined when it does not carry the metric (no
 * datapoint: the counts stand still). A counter with durationSeconds is summed over the reports or intervals of
 * the last durationSeconds (their deltas, the window kept in `st.w`); anything else is the value itself.
 */
export function measure(b: Behavior, read: Read, at: number, st: BehaviorState): MetricValue | undefined {
  const spec = METRICS[b.metric];
  const v = spec?.datapoint && read.usage && b.criteria ? spec.datapoint(read.usage, b.criteria) : read.values[b.metric];
  if (v === undefined || read.types[b.metric] !== b.type) return undefined;
  const d = b.criteria?.durationSeconds;
  if (d === undefined || !spec?.counter) return v;
  const from = at - d * 1000;
  const w = (st.w ?? []).filter(([t]) => t > from);
  w.push([at, v as number]);
  st.w = w;
  let sum = 0;
  for (const [, x] of w) sum += x;
  return sum;
}

/** The datapoint, given the measured value and (with a statisticalThreshold) the fleet's value at that percentile;
 * undefined while the fleet has no percentile yet. */
export function judgeValue(c: Criteria, value: MetricValue, fleet?: number): Datapoint | undefined {
  if (c.percentile !== undefined) {
    if (fleet === undefined) return undefined;
    return { value, violating: !normal(c, value, fleet) };
  }
  return { value, violating: !normal(c, value) };
}

/** The consecutive-datapoint rule: updates the counts and says what happened. */
export function step(c: Criteria, st: BehaviorState, violating: boolean): Transition {
  if (!st.v) {
    if (!violating) {
      st.a = 0;
      return undefined;
    }
    if (++st.a < c.toAlarm) return undefined;
    st.a = 0;
    st.c = 0;
    return 'raise';
  }
  if (violating) {
    st.c = 0;
    return 'update';
  }
  if (++st.c < c.toClear) return undefined;
  st.a = 0;
  st.c = 0;
  return 'clear';
}

/** Nearest-rank percentile of sorted values (p in 0..1). */
export function percentileOf(sorted: number[], p: number): number | undefined {
  if (!sorted.length) return undefined;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1));
  return sorted[i];
}
