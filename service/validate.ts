// The AWS IoT Device Defender device metrics document, checked as the service would: decoding (CBOR or JSON), then
// the "Device metrics document specification" (long or short tag names), with AWS's error codes. Pure: no state,
// no I/O (the per-thing rules, throttling and increasing report ids, are in judge.ts).
//
// Sources (AWS IoT Device Defender developer guide):
//   spec, topics, throttling: https://docs.aws.amazon.com/iot-device-defender/latest/devguide/detect-device-side-metrics.html
//   response payloads, InvalidPayload, thing names, positive report ids:
//     https://docs.aws.amazon.com/iot-device-defender/latest/devguide/device-defender-troubleshoot.html
//   custom metric names: https://docs.aws.amazon.com/iot/latest/apireference/API_CreateCustomMetric.html
import * as cborg from 'cborg';
import { isUtf8 } from 'node:buffer';
import { isIPv4, isIPv6 } from 'node:net';
import { parse as parseJson, isInteger } from 'lossless-json';
import type { Format } from './topics.ts';
// The tag names and the custom-metric rules are the device writer's (one table, one list of rules: docs/report-format.md).
import { tagNames, customMetricError, MAX_LIST } from '../src/common/spec.ts';

/**
 * Error codes of a rejected report (`statusDetails.ErrorCode`). The AWS guide shows one by name, InvalidPayload
 * (with ErrorMessage "Malformed metrics report"), and lists none; the others are the codes the service is seen to
 * send (the same four a Rust client for AWS IoT, rustot, decodes). Where no code fits (bad version, report id,
 * thing name, size) the service answers InvalidPayload, and so does this one, with a message that says which.
 */
export const ErrorCode = {
  /** Not a CBOR / JSON document, or not a map at its top. */
  Malformed: 'Malformed',
  /** Decoded, but not what the specification allows. */
  InvalidPayload: 'InvalidPayload',
  /** No header block. */
  MissingHeader: 'MissingHeader',
  /** More than one report per minimum period from one thing. */
  Throttled: 'Throttled',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** The only version the specification defines. */
export const VERSION = '1.0';
/** AWS IoT Core's largest message payload, 128 KB (the guide gives no smaller one for reports). */
export const MAX_PAYLOAD = 128 * 1024;
export { MAX_LIST };
/** Thing names, as CreateThing takes them: 1 to 128 of [a-zA-Z0-9:_-]. */
export const THING_NAME = /^[a-zA-Z0-9:_-]{1,128}$/;
/** Counters are Java longs on the service side. */
const MAX_LONG = 2n ** 63n - 1n;

export class ReportError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** Decodes a report payload; throws ReportError (Malformed, or InvalidPayload when too large). JSON integers
 * beyond 2^53 come out as exact bigints (as CBOR's do), and text must be valid UTF-8 in both formats. */
export function decodeReport(payload: Uint8Array, format: Format): unknown {
  if (payload.length > MAX_PAYLOAD) throw new ReportError(ErrorCode.InvalidPayload, `Payload of ${payload.length} bytes, more than ${MAX_PAYLOAD}`);
  let doc: unknown;
  try {
    doc =
      format === 'json'
        ? parseJson(new TextDecoder('utf-8', { fatal: true }).decode(payload), null, exactNumber)
        : cborg.decode(payload, { ...CBOR_OPTIONS, tokenizer: new Utf8Tokenizer(payload) });
  } catch (err) {
    throw new ReportError(ErrorCode.Malformed, `Not a ${format.toUpperCase()} document: ${(err as Error).message}`);
  }
  if (!isMap(doc)) throw new ReportError(ErrorCode.Malformed, `Not a ${format.toUpperCase()} map at the top level`);
  return doc;
}

// the tokenizer is handed these whole (cborg adds its defaults only to the options of decode())
const CBOR_OPTIONS = { strict: true, rejectDuplicateMapKeys: true, allowIndefinite: true, allowBigInt: true, allowUndefined: false, allowNaN: false, allowInfinity: false };

/** A JSON number: a Number, or a bigint for an integer a Number cannot hold exactly. An integer written as the
 * shortest text of a Double (what JSON.stringify and our writer give for 2^60: 1152921504606847000) is that Double. */
function exactNumber(text: string): number | bigint {
  const n = Number(text);
  return isInteger(text) && !Number.isSafeInteger(n) && String(n) !== text ? BigInt(text) : n;
}

/** cborg's tokenizer, refusing a text string that is not UTF-8 (cborg decodes text leniently, to U+FFFD). */
class Utf8Tokenizer extends cborg.Tokenizer {
  constructor(data: Uint8Array) {
    super(data, { ...CBOR_OPTIONS, retainStringBytes: true });
  }
  next(): cborg.Token {
    const token = super.next();
    // cborg gives an empty text string no byteValue: nothing to check there
    if (token.type === cborg.Type.string && token.byteValue && !isUtf8(token.byteValue)) throw new Error('text string that is not UTF-8');
    return token;
  }
}

/** Why a thing name is refused, or undefined when it is fine. */
export function thingNameError(thing: string): string | undefined {
  if (!thing) return 'Empty thing name';
  if (!THING_NAME.test(thing)) return 'Invalid thing name: 1 to 128 of a-z A-Z 0-9 : _ -';
  return undefined;
}

/** The report id as sent, exact, when it is an integer (for the response even to a rejected report), else undefined. */
export function peekReportId(doc: unknown): bigint | undefined {
  if (!isMap(doc)) return undefined;
  const h = doc.header ?? doc.hed;
  const id = isMap(h) ? (h.report_id ?? h.rid) : undefined;
  if (typeof id === 'bigint') return id;
  return Number.isSafeInteger(id) ? BigInt(id) : undefined;
}

export interface Checked {
  /** The report id (a Number: inexact above 2^53). */
  reportId: number;
  /** The report id, exact. */
  exactId: bigint;
  /** Which tag names the document uses. */
  tags: 'long' | 'short';
}

/**
 * Checks a decoded document against the specification; throws ReportError (MissingHeader or InvalidPayload).
 * Stricter than the guide in two places, both noted where they are: a document uses long or short names, not
 * both; and an IPv6 remote address is written [addr]:port.
 */
export function validateReport(doc: unknown, opts: { maxList?: number } = {}): Checked {
  if (!isMap(doc)) throw new ReportError(ErrorCode.Malformed, 'Not a map at the top level');
  if (!('header' in doc) && !('hed' in doc)) throw new ReportError(ErrorCode.MissingHeader, 'Missing header');
  const cx: Ctx = { maxList: opts.maxList ?? MAX_LIST };
  ROOT(doc, '', cx);
  // The guide: "A report can have both or at least one metrics or custom_metrics block". Where
  // shared/defender-protocol.md calls metrics required, the guide wins.
  if (!Object.keys(doc).some((k) => k !== 'header' && k !== 'hed')) fail('', 'needs a metrics or custom_metrics block');
  const h: any = doc.header ?? doc.hed;
  const id = h.report_id ?? h.rid;
  return { reportId: Number(id), exactId: BigInt(id), tags: cx.style! };
}

// --- the specification as a table ----------------------------------------------------------------------------

interface Ctx {
  maxList: number;
  /** Set by the first tag name met; a later name of the other style is refused. */
  style?: 'long' | 'short';
}
type Check = (v: unknown, at: string, cx: Ctx) => void;
interface Field {
  check: Check;
  required?: boolean;
}

function fail(at: string, what: string): never {
  throw new ReportError(ErrorCode.InvalidPayload, `Malformed metrics report: ${at ? at + ' ' : ''}${what}`);
}

function isMap(v: unknown): v is Record<string, any> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (v instanceof Uint8Array) return 'a byte string';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? v.slice(0, 40) + '...' : v);
  if (typeof v === 'object') return 'a map';
  return String(v);
}

/** Short name of each long one, from the tag table. */
const SHORT = new Map(tagNames().split(',').map((pair) => pair.split(' ') as [string, string]));

/** A block of named fields by long name; each has a short name too (the tag table's). */
function block(fields: Record<string, Field>): Check {
  const names = new Map<string, { long: string; style: 'long' | 'short' }>();
  for (const long of Object.keys(fields)) {
    if (!SHORT.has(long)) throw new Error(`${long}: not in the tag table`);
    names.set(long, { long, style: 'long' });
    names.set(SHORT.get(long)!, { long, style: 'short' });
  }
  return (v, at, cx) => {
    if (!isMap(v)) fail(at, `is ${describe(v)}, not a map`);
    const seen = new Set<string>();
    for (const key of Object.keys(v)) {
      const name = names.get(key);
      const here = at ? `${at}.${key}` : key;
      if (!name) fail(at, `has an unknown key ${JSON.stringify(key)}`);
      // The guide offers long names or short names for a report; a mix is not a report either way.
      if (cx.style && cx.style !== name.style) fail(here, `is a ${name.style} name in a document of ${cx.style} names`);
      cx.style = name.style;
      seen.add(name.long);
      fields[name.long].check(v[key], here, cx);
    }
    for (const [long, f] of Object.entries(fields)) {
      if (f.required && !seen.has(long)) fail(at, `is missing ${cx.style === 'short' ? SHORT.get(long) : long}`);
    }
  };
}

function integer(min: bigint, max: bigint, what = 'an integer'): Check {
  return (v, at) => {
    const n = typeof v === 'bigint' ? v : typeof v === 'number' && Number.isInteger(v) ? BigInt(v) : undefined;
    if (n === undefined) fail(at, `is ${describe(v)}, not ${what}`);
    if (n < min || n > max) fail(at, `is ${describe(v)}, out of range ${min}..${max}`);
  };
}

const counter = integer(0n, MAX_LONG, 'a count');
const localPort = integer(0n, 65535n, 'a port');
const listeningPort = integer(1n, 65535n, 'a port'); // the guide: "ports should be numbers greater than 0"

const text: Check = (v, at) => {
  if (typeof v !== 'string') fail(at, `is ${describe(v)}, not a string`);
};

function list(item: Check): Check {
  return (v, at, cx) => {
    if (!Array.isArray(v)) fail(at, `is ${describe(v)}, not a list`);
    if (v.length > cx.maxList) fail(at, `has ${v.length} entries, more than ${cx.maxList}`);
    v.forEach((e, i) => item(e, `${at}[${i}]`, cx));
  };
}

/** "a.b.c.d:port" or "[v6]:port". The guide's table says only "ip:port", IPv4 or IPv6 (and type Number, though
 * its examples are strings); AWS's agent brackets IPv6. */
const remoteAddr: Check = (v, at) => {
  if (typeof v !== 'string') fail(at, `is ${describe(v)}, not "ip:port"`);
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(v);
  if (!m) fail(at, `is ${describe(v)}, not "ip:port" (IPv6 as "[ip]:port")`);
  if (m[1] !== undefined ? !isIPv6(m[1]) : !isIPv4(m[2])) fail(at, `is ${describe(v)}: not an IP address`);
  if (!/^(0|[1-9]\d*)$/.test(m[3]) || Number(m[3]) > 65535) fail(at, `is ${describe(v)}: port out of range 0..65535`);
};

const ports = block({
  ports: { check: list(block({ port: { check: listeningPort, required: true }, interface: { check: text } })) },
  total: { check: counter },
});

const METRICS = block({
  tcp_connections: {
    check: block({
      established_connections: {
        check: block({
          connections: {
            check: list(
              block({
                remote_addr: { check: remoteAddr, required: true },
                local_port: { check: localPort },
                local_interface: { check: text },
              }),
            ),
          },
          total: { check: counter },
        }),
      },
    }),
  },
  listening_tcp_ports: { check: ports },
  listening_udp_ports: { check: ports },
  network_stats: {
    check: block({
      bytes_in: { check: counter },
      bytes_out: { check: counter },
      packets_in: { check: counter },
      packets_out: { check: counter },
    }),
  },
});

/** name -> [ { number | number_list | string_list | ip_list } ]: one value in a one-entry list (the guide's
 * troubleshooting: a bare {"number": 0} is rejected as InvalidPayload "Malformed metrics report"); the name and
 * the value as src/common/spec.ts's customMetricError takes them. */
const customMetrics: Check = (v, at) => {
  if (!isMap(v)) fail(at, `is ${describe(v)}, not a map`);
  for (const [name, value] of Object.entries(v)) {
    const here = `${at}.${name}`;
    if (!Array.isArray(value) || value.length !== 1) fail(here, `is ${describe(value)}, not a list of one value`);
    const why = customMetricError(name, exactNumbers(value[0]));
    if (why) fail(here, `is refused: ${why}`);
  }
};

/** A CBOR integer beyond 2^53 (a bigint from cborg) as a number when a Double holds it exactly. */
function exactNumbers(v: unknown): unknown {
  if (typeof v === 'bigint') return BigInt(Number(v)) === v ? Number(v) : v;
  if (Array.isArray(v)) return v.map(exactNumbers);
  if (isMap(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, exactNumbers(x)]));
  return v;
}

const version: Check = (v, at) => {
  if (typeof v !== 'string') fail(at, `is ${describe(v)}, not a string`);
  if (v !== VERSION) fail(at, `is ${describe(v)}: unsupported version (${VERSION} only)`);
};

const ROOT = block({
  header: {
    required: true,
    check: block({
      // the troubleshooting guide: "a positive integer"
      report_id: { check: integer(1n, MAX_LONG, 'an integer'), required: true },
      version: { check: version, required: true },
    }),
  },
  metrics: { check: METRICS },
  custom_metrics: { check: customMetrics },
});
