// Security profiles in AWS's own format (the body of CreateSecurityProfile, or what `aws iot
// describe-security-profile` prints), checked at load: an invalid profile is refused with the field named
// (ProfileError), an unknown field is kept and ignored with a warning. Pure apart from reading a thing-group file.
//
// Sources (AWS IoT API reference): CreateSecurityProfile, Behavior, BehaviorCriteria, MetricValue,
// StatisticalThreshold; developer guide "Device-side metrics" (operators per metric, durations) and "Custom metrics".
// Written by hand rather than with a JSON-schema validator: the rules depend on each other (the operator on the
// metric's type, the value key on the operator), and the messages must name the field in the profile's own terms.
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { isIP } from 'node:net';
import { METRICS, type MetricType } from './metrics.ts';

export type Operator =
  | 'less-than'
  | 'less-than-equals'
  | 'greater-than'
  | 'greater-than-equals'
  | 'in-cidr-set'
  | 'not-in-cidr-set'
  | 'in-port-set'
  | 'not-in-port-set'
  | 'in-set'
  | 'not-in-set';

/** Which operators apply to which type, and the MetricValue key each takes ("count" for AWS's own number metrics,
 * "number" for a custom one). */
const OPERATORS: Record<MetricType, { ops: Operator[]; key: 'count' | 'number' | 'cidrs' | 'ports' | 'numbers' | 'strings' }> = {
  number: { ops: ['less-than', 'less-than-equals', 'greater-than', 'greater-than-equals'], key: 'count' },
  'ip-address-list': { ops: ['in-cidr-set', 'not-in-cidr-set'], key: 'cidrs' },
  'port-list': { ops: ['in-port-set', 'not-in-port-set'], key: 'ports' },
  'number-list': { ops: ['in-set', 'not-in-set'], key: 'numbers' },
  'string-list': { ops: ['in-set', 'not-in-set'], key: 'strings' },
};

/** StatisticalThreshold.statistic, as the API reference's pattern lists them. */
export const STATISTICS = ['p0', 'p0.01', 'p0.1', 'p1', 'p10', 'p50', 'p90', 'p99', 'p99.9', 'p99.99', 'p100'] as const;
/** durationSeconds AWS accepts for device-side metrics; others are kept (useful with a short local period) with a warning. */
export const AWS_DURATIONS = [300, 600, 900, 1800, 3600];

export interface Criteria {
  op: Operator;
  /** number types: the threshold (undefined with a statistic). */
  threshold?: number;
  /** list types: the set (CIDRs as given, ports, numbers or strings). */
  set?: (string | number)[];
  durationSeconds?: number;
  toAlarm: number;
  toClear: number;
  /** StatisticalThreshold.statistic as a fraction (p90 -> 0.9). */
  percentile?: number;
  statistic?: string;
}

export interface Behavior {
  name: string;
  metric: string;
  type: MetricType;
  /** Undefined: the behaviour only retains the metric (or is ML Detect, not evaluated here). */
  criteria?: Criteria;
  suppressAlerts: boolean;
  /** The behaviour as written in the profile (the alert message carries it, as AWS's does). */
  raw: Record<string, unknown>;
}

export interface Profile {
  name: string;
  behaviors: Behavior[];
  /** Thing names it applies to; undefined: every thing. */
  things?: Set<string>;
  /** The profile as written. */
  raw: Record<string, unknown>;
  /** As the store keeps it: as written, but a thingGroupFile made absolute (another process reads it). */
  stored: Record<string, unknown>;
  /** Unknown fields and other things kept but not acted on. */
  warnings: string[];
}

export class ProfileError extends Error {
  constructor(
    /** The offending field, as a path in the profile (`behaviors[2].criteria.value.count`). */
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
  }
}

const NAME = /^[a-zA-Z0-9:_-]{1,128}$/;
const PROFILE_FIELDS = new Set([
  'securityProfileName',
  'securityProfileDescription',
  'securityProfileArn',
  'behaviors',
  'alertTargets',
  'additionalMetricsToRetain',
  'additionalMetricsToRetainV2',
  'metricsExportConfig',
  'tags',
  'version',
  'creationDate',
  'lastModifiedDate',
  // ours: which things it applies to (AWS attaches a profile to targets with AttachSecurityProfile instead)
  'things',
  'thingGroupFile',
]);
const BEHAVIOR_FIELDS = new Set(['name', 'metric', 'metricDimension', 'criteria', 'suppressAlerts', 'exportMetric']);
const CRITERIA_FIELDS = new Set(['comparisonOperator', 'value', 'durationSeconds', 'consecutiveDatapointsToAlarm', 'consecutiveDatapointsToClear', 'statisticalThreshold', 'mlDetectionConfig']);
const VALUE_FIELDS = new Set(['count', 'number', 'numbers', 'strings', 'cidrs', 'ports']);

const isObj = (v: unknown): v is Record<string, any> => typeof v === 'object' && v !== null && !Array.isArray(v);
const show = (v: unknown) => (v === undefined ? 'missing' : JSON.stringify(v));

function unknownFields(o: Record<string, unknown>, known: Set<string>, at: string, warnings: string[]) {
  for (const k of Object.keys(o)) if (!known.has(k)) warnings.push(`${at ? at + '.' : ''}${k}: unknown field, kept and ignored`);
}

function integer(v: unknown, at: string, min: number, max: number): number {
  // AWS's CloudFormation shape writes count as a string of digits
  const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) throw new ProfileError(at, `is ${show(v)}, not an integer from ${min} to ${max}`);
  return n;
}

/** "a.b.c.d/n" or "v6/n" (a bare address is a /32 or /128). */
export function parseCidr(c: unknown, at: string): { addr: string; prefix: number; family: 'ipv4' | 'ipv6' } {
  if (typeof c !== 'string') throw new ProfileError(at, `is ${show(c)}, not a CIDR`);
  const [addr, bits, extra] = c.split('/');
  const v = isIP(addr);
  if (!v || extra !== undefined) throw new ProfileError(at, `is ${show(c)}, not a CIDR`);
  const max = v === 4 ? 32 : 128;
  const prefix = bits === undefined ? max : /^\d{1,3}$/.test(bits) ? Number(bits) : NaN;
  if (!(prefix >= 0 && prefix <= max)) throw new ProfileError(at, `is ${show(c)}: prefix length out of range 0..${max}`);
  return { addr, prefix, family: v === 4 ? 'ipv4' : 'ipv6' };
}

function criteriaOf(b: Record<string, any>, at: string, type: MetricType, custom: boolean, warnings: string[]): Criteria | undefined {
  const c = b.criteria;
  if (!isObj(c)) throw new ProfileError(`${at}.criteria`, `is ${show(c)}, not an object`);
  unknownFields(c, CRITERIA_FIELDS, `${at}.criteria`, warnings);
  const toAlarm = c.consecutiveDatapointsToAlarm === undefined ? 1 : integer(c.consecutiveDatapointsToAlarm, `${at}.criteria.consecutiveDatapointsToAlarm`, 1, 10);
  const toClear = c.consecutiveDatapointsToClear === undefined ? 1 : integer(c.consecutiveDatapointsToClear, `${at}.criteria.consecutiveDatapointsToClear`, 1, 10);
  if (c.mlDetectionConfig !== undefined) {
    warnings.push(`${at}.criteria.mlDetectionConfig: ML Detect is not available here; the behaviour only retains its metric`);
    return undefined;
  }
  const opAt = `${at}.criteria.comparisonOperator`;
  const allowed = OPERATORS[type];
  if (typeof c.comparisonOperator !== 'string') throw new ProfileError(opAt, `is ${show(c.comparisonOperator)}; one of ${allowed.ops.join(', ')} is needed for ${b.metric}`);
  const op = c.comparisonOperator as Operator;
  if (!allowed.ops.includes(op)) throw new ProfileError(opAt, `is ${show(op)}, which does not apply to ${b.metric} (a ${type}): use ${allowed.ops.join(', ')}`);
  const out: Criteria = { op, toAlarm, toClear };
  if (c.durationSeconds !== undefined) {
    const dAt = `${at}.criteria.durationSeconds`;
    if (type !== 'number') throw new ProfileError(dAt, `does not apply to ${b.metric}, a list`);
    out.durationSeconds = integer(c.durationSeconds, dAt, 1, 86400);
    if (!AWS_DURATIONS.includes(out.durationSeconds)) warnings.push(`${dAt}: ${out.durationSeconds} is not one AWS accepts (${AWS_DURATIONS.join(', ')}); kept`);
  }
  if (c.statisticalThreshold !== undefined) {
    const sAt = `${at}.criteria.statisticalThreshold`;
    if (type !== 'number') throw new ProfileError(sAt, `does not apply to ${b.metric}, a list`);
    if (!isObj(c.statisticalThreshold)) throw new ProfileError(sAt, `is ${show(c.statisticalThreshold)}, not an object`);
    const s = c.statisticalThreshold.statistic;
    if (!STATISTICS.includes(s)) throw new ProfileError(`${sAt}.statistic`, `is ${show(s)}, not one of ${STATISTICS.join(', ')}`);
    unknownFields(c.statisticalThreshold, new Set(['statistic']), sAt, warnings);
    if (c.value !== undefined) throw new ProfileError(`${at}.criteria.value`, 'is given beside statisticalThreshold: use one');
    out.statistic = s;
    out.percentile = Number((Number(s.slice(1)) / 100).toFixed(6)); // p99.9 -> 0.999, not 0.9990000000000001
    return out;
  }
  const vAt = `${at}.criteria.value`;
  if (!isObj(c.value)) throw new ProfileError(vAt, `is ${show(c.value)}; a value (or a statisticalThreshold) is needed with ${op}`);
  unknownFields(c.value, VALUE_FIELDS, vAt, warnings);
  const key = type === 'number' && custom ? 'number' : allowed.key;
  const v = c.value[key];
  if (v === undefined) throw new ProfileError(`${vAt}.${key}`, `is missing (${b.metric} with ${op} takes value.${key})`);
  const kAt = `${vAt}.${key}`;
  switch (key) {
    case 'count':
      out.threshold = integer(v, kAt, 0, Number.MAX_SAFE_INTEGER);
      break;
    case 'number':
      if (typeof v !== 'number' || !Number.isFinite(v)) throw new ProfileError(kAt, `is ${show(v)}, not a number`);
      out.threshold = v;
      break;
    default: {
      if (!Array.isArray(v)) throw new ProfileError(kAt, `is ${show(v)}, not a list`);
      out.set = v.map((x, i) => {
        const xAt = `${kAt}[${i}]`;
        if (key === 'cidrs') return (parseCidr(x, xAt), x as string);
        if (key === 'ports') return integer(x, xAt, 0, 65535);
        if (key === 'numbers') {
          if (typeof x !== 'number' || !Number.isFinite(x)) throw new ProfileError(xAt, `is ${show(x)}, not a number`);
          return x;
        }
        if (typeof x !== 'string') throw new ProfileError(xAt, `is ${show(x)}, not a string`);
        return x;
      });
    }
  }
  return out;
}

/** A custom metric's type: AWS keeps it with CreateCustomMetric; here it follows from the value the behaviour
 * compares with (number, numbers, strings, cidrs), or from its operator. */
function customType(b: Record<string, any>): MetricType | undefined {
  const c = b.criteria;
  if (!isObj(c)) return undefined;
  if (c.statisticalThreshold !== undefined || c.mlDetectionConfig !== undefined) return 'number';
  const v = isObj(c.value) ? c.value : {};
  if ('number' in v || 'count' in v) return 'number';
  if ('cidrs' in v || c.comparisonOperator === 'in-cidr-set' || c.comparisonOperator === 'not-in-cidr-set') return 'ip-address-list';
  if ('numbers' in v) return 'number-list';
  if ('strings' in v) return 'string-list';
  if (typeof c.comparisonOperator === 'string' && c.comparisonOperator.includes('than')) return 'number';
  return undefined;
}

/** Checks a profile (the parsed JSON) and returns it ready to evaluate; throws ProfileError naming the field.
 * `baseDir`: where a relative thingGroupFile is read from. */
export function parseProfile(doc: unknown, baseDir = process.cwd()): Profile {
  if (!isObj(doc)) throw new ProfileError('(profile)', `is ${Array.isArray(doc) ? 'a list' : show(doc)}, not an object`);
  const warnings: string[] = [];
  unknownFields(doc, PROFILE_FIELDS, '', warnings);
  const name = doc.securityProfileName;
  if (typeof name !== 'string' || !NAME.test(name)) throw new ProfileError('securityProfileName', `is ${show(name)}, not 1 to 128 of [a-zA-Z0-9:_-]`);
  const list = doc.behaviors ?? [];
  if (!Array.isArray(list)) throw new ProfileError('behaviors', `is ${show(list)}, not a list`);
  if (list.length > 100) throw new ProfileError('behaviors', `has ${list.length} behaviours, more than AWS's 100`);
  const behaviors: Behavior[] = [];
  const seen = new Set<string>();
  list.forEach((b: unknown, i: number) => {
    const at = `behaviors[${i}]`;
    if (!isObj(b)) throw new ProfileError(at, `is ${show(b)}, not an object`);
    unknownFields(b, BEHAVIOR_FIELDS, at, warnings);
    if (typeof b.name !== 'string' || !b.name.length || b.name.length > 128) throw new ProfileError(`${at}.name`, `is ${show(b.name)}, not a name of 1 to 128 characters`);
    // AWS's own guide writes names with spaces in its examples, though its API allows only these
    if (!NAME.test(b.name)) warnings.push(`${at}.name: ${show(b.name)} has characters AWS's API refuses (it allows [a-zA-Z0-9:_-]); kept`);
    if (seen.has(b.name)) throw new ProfileError(`${at}.name`, `${show(b.name)} is used by an earlier behaviour`);
    seen.add(b.name);
    if (typeof b.metric !== 'string' || !NAME.test(b.metric)) throw new ProfileError(`${at}.metric`, `is ${show(b.metric)}, not a metric name`);
    const spec = METRICS[b.metric];
    if (!spec && b.metric.startsWith('aws:')) throw new ProfileError(`${at}.metric`, `${show(b.metric)} is not a metric AWS defines for Rules Detect`);
    if (spec && !spec.read) warnings.push(`${at}.metric: ${b.metric} is not measured by this service; the behaviour sees no datapoints`);
    if (b.metricDimension !== undefined) warnings.push(`${at}.metricDimension: not applied (device-side metrics have no dimensions)`);
    if (b.suppressAlerts !== undefined && typeof b.suppressAlerts !== 'boolean') throw new ProfileError(`${at}.suppressAlerts`, `is ${show(b.suppressAlerts)}, not true or false`);
    const type = spec?.type ?? customType(b) ?? 'number';
    const criteria = b.criteria === undefined ? undefined : criteriaOf(b, at, type, !spec, warnings);
    behaviors.push({ name: b.name, metric: b.metric, type, criteria, suppressAlerts: b.suppressAlerts === true, raw: b });
  });
  if (doc.alertTargets !== undefined) warnings.push('alertTargets: SNS is not reached from here; alerts go to the targets the service is started with');
  let things: Set<string> | undefined;
  if (doc.things !== undefined && doc.things !== 'all') {
    if (!Array.isArray(doc.things) || doc.things.some((t: unknown) => typeof t !== 'string')) throw new ProfileError('things', `is ${show(doc.things)}, not "all" or a list of thing names`);
    things = new Set(doc.things);
  }
  if (doc.thingGroupFile !== undefined) {
    if (typeof doc.thingGroupFile !== 'string') throw new ProfileError('thingGroupFile', `is ${show(doc.thingGroupFile)}, not a file name`);
    let text: string;
    try {
      text = readFileSync(resolve(baseDir, doc.thingGroupFile), 'utf8');
    } catch (err) {
      throw new ProfileError('thingGroupFile', `${show(doc.thingGroupFile)} cannot be read: ${(err as Error).message}`);
    }
    things ??= new Set();
    for (const line of text.split('\n')) {
      const t = line.replace(/#.*/, '').trim();
      if (t) things.add(t);
    }
  }
  const stored = typeof doc.thingGroupFile === 'string' ? { ...doc, thingGroupFile: resolve(baseDir, doc.thingGroupFile) } : doc;
  return { name, behaviors, things, raw: doc, stored, warnings };
}

/** Warnings for the behaviours on cloud-side metrics, where the broker is not the embedded one (which alone tells
 * this service what it saw). */
export function cloudSideWarnings(p: Profile): string[] {
  const out: string[] = [];
  p.behaviors.forEach((b, i) => {
    if (METRICS[b.metric]?.side === 'cloud' && METRICS[b.metric].read) {
      out.push(`behaviors[${i}].metric: ${b.metric} is cloud-side, measured only by the embedded broker (not by an external one); the behaviour sees no datapoints`);
    }
  });
  return out;
}

/** Reads and checks a profile file (JSON). */
export function loadProfile(file: string): Profile {
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ProfileError('(profile)', `${file}: ${(err as Error).message}`);
  }
  return parseProfile(doc, dirname(resolve(file)));
}
