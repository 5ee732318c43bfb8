// The verdict on each report, and what the service remembers to give it. No I/O of its own: service.ts feeds it
// payloads and publishes the answers it builds. Each thing's last accepted report (id and time: what refuses a
// report id that does not increase, and throttles) is in memory, or, given a Ledger (the store), in the store,
// where several collectors sharing the report topics claim each report atomically (judgeShared).
//
// Memory is bounded whatever devices send: a name that fails validation leaves nothing behind; each thing costs
// one small record (last accepted id and time, and the last few answers, by payload digest, so that a QoS 1
// redelivery gets the answer it got the first time); at most `maxThings` things are held, the one silent longest
// evicted first; and decoded documents are kept only in one short list of the most recent reports, for all
// things together (the store keeps the rest).
import { createHash } from 'node:crypto';
import * as cborg from 'cborg';
import { stringify as stringifyJson } from 'lossless-json';
import type { Format } from './topics.ts';
import { decodeReport, validateReport, peekReportId, thingNameError, ReportError, ErrorCode, MAX_LIST } from './validate.ts';

export type Verdict = 'ACCEPTED' | 'REJECTED';

export interface Report {
  /** The header's report id when it is an integer (even on a rejected report), else undefined. A Number: above 2^53
   * it is rounded; `exactId` is exact. */
  reportId: number | undefined;
  /** The report id, exact, in decimal (what the answer carries; a string, so that a Report goes through
   * JSON.stringify). */
  exactId?: string;
  format: Format;
  /** The decoded document (undefined when it did not decode, and on a redelivery). */
  doc: any;
  verdict: Verdict;
  errorCode?: string;
  errorMessage?: string;
  /** When it was judged (epoch ms); a redelivery carries the time of the first verdict. */
  at: number;
  /** A QoS 1 redelivery of a report already answered (same thing, id and payload): the same answer again. */
  redelivery?: boolean;
}

export interface JudgeOptions {
  /** Seconds a thing must wait after an accepted report before the next; AWS throttles under 300. May be fractional. */
  minPeriod?: number;
  /** Recent reports kept with their decoded documents, all things together (default 20). */
  keep?: number;
  /** Things held in memory (default 10,000); past it, the thing that reported longest ago is forgotten. */
  maxThings?: number;
  /** Entries allowed per list (default MAX_LIST). */
  maxList?: number;
  /** Clock in epoch ms (default Date.now), for tests. */
  now?: () => number;
  /** Told the name of each thing evicted. */
  onEvict?: (thing: string) => void;
}

/** An answer given, by the digest of the report it answered. */
interface Answered {
  digest: Buffer;
  id: bigint;
  verdict: Verdict;
  errorCode?: string;
  errorMessage?: string;
  at: number;
}

interface Thing {
  lastId?: bigint;
  lastAt?: number;
  /** The last ANSWERS_KEPT answers to reports with an id, oldest first. */
  answers: Answered[];
}

/** A thing's last accepted report. */
export interface Accepted {
  id: bigint;
  /** Epoch ms. */
  at: number;
  /** The first 16 bytes of the payload's SHA-256: the same payload again (a QoS 1 redelivery) is answered as before. */
  digest: Buffer;
}

/** Where collectors sharing the report topics keep each thing's last accepted report (the store implements it). */
export interface Ledger {
  lastAccepted(thing: string): Promise<Accepted | undefined>;
  /** Atomically: makes `next` the thing's last accepted report if its id is above the last one's and it comes at
   * least minPeriodMs after it (undefined: claimed); else changes nothing and returns the last accepted report. */
  claim(thing: string, next: Accepted, minPeriodMs: number): Promise<Accepted | undefined>;
}

/** A report being judged, between begin() and finish(). */
interface Judging {
  thing: string;
  at: number;
  doc: unknown;
  exactId?: bigint;
  undecodable?: ReportError;
  t: Thing;
  digest?: Buffer;
  report(err?: ReportError): Report;
}

// The guide: report_id is a "monotonically increasing value"
const notGreater = (id: bigint, last: bigint) => new ReportError(ErrorCode.InvalidPayload, `Malformed metrics report: report_id ${id} is not greater than ${last}, the last accepted`);

/** Answers remembered per thing for redeliveries: a device has one report in flight, a few cover a retry burst. */
const ANSWERS_KEPT = 4;

export class Judge {
  readonly minPeriod: number;
  readonly keep: number;
  readonly maxThings: number;
  readonly maxList: number;
  private readonly now: () => number;
  private readonly onEvict: (thing: string) => void;
  /** In order of last report, oldest first (a Map keeps insertion order: a report moves its thing to the end). */
  private readonly things = new Map<string, Thing>();
  private readonly recent: (Report & { thing: string })[] = [];

  constructor(opts: JudgeOptions = {}) {
    this.minPeriod = opts.minPeriod ?? 300;
    this.keep = opts.keep ?? 20;
    this.maxThings = opts.maxThings ?? 10_000;
    this.maxList = opts.maxList ?? MAX_LIST;
    this.now = opts.now ?? Date.now;
    this.onEvict = opts.onEvict ?? (() => {});
    if (!(this.minPeriod >= 0)) throw new RangeError('minPeriod is seconds, 0 or more');
    if (!(Number.isInteger(this.keep) && this.keep >= 0)) throw new RangeError('keep is a count, 0 or more');
    if (!(Number.isInteger(this.maxThings) && this.maxThings >= 1)) throw new RangeError('maxThings is a count, 1 or more');
  }

  /** Judges one report published by `thing` in `format`, remembers what it must and returns the verdict. */
  judge(thing: string, format: Format, payload: Uint8Array): Report {
    const c = this.begin(thing, format, payload);
    if ('verdict' in c) return c;
    const { t, at } = c;
    return this.finish(c, () => {
      if (c.undecodable) throw c.undecodable;
      // Throttling comes before the schema, as a rate limit would; only accepted reports count.
      this.throttle(t.lastAt, at);
      const { exactId: id } = validateReport(c.doc, { maxList: this.maxList });
      if (t.lastId !== undefined && id <= t.lastId) throw notGreater(id, t.lastId);
      t.lastId = id;
      t.lastAt = at;
    });
  }

  /** As judge(), with each thing's last accepted report in `ledger`, shared by every collector on it: a report is
   * accepted by the one collector that claims it there, whichever collector the broker handed it to. */
  async judgeShared(thing: string, format: Format, payload: Uint8Array, ledger: Ledger): Promise<Report> {
    const c = this.begin(thing, format, payload);
    if ('verdict' in c) return c;
    const { at } = c;
    let refused: Accepted | undefined;
    let invalid: ReportError | undefined;
    let id: bigint | undefined;
    try {
      if (c.undecodable) throw c.undecodable;
      id = validateReport(c.doc, { maxList: this.maxList }).exactId;
    } catch (err) {
      if (!(err instanceof ReportError)) throw err;
      invalid = err;
    }
    if (invalid) {
      // as judge() says: throttled before the schema is looked at (an undecodable report has no state to read)
      if (!c.undecodable) refused = await ledger.lastAccepted(thing);
    } else refused = await ledger.claim(thing, { id: id!, at, digest: c.digest! }, this.minPeriod * 1000);
    // a redelivery of the report another collector accepted: its answer again
    if (!invalid && refused && refused.id === id && refused.digest.equals(c.digest!)) return { ...c.report(), at: refused.at, doc: undefined, redelivery: true };
    return this.finish(c, () => {
      if (c.undecodable) throw c.undecodable;
      this.throttle(refused?.at, at);
      if (invalid) throw invalid;
      if (refused) throw notGreater(id!, refused.id);
    });
  }

  /** What every verdict starts from; a Report already when the verdict needs no more (a bad name, a redelivery). */
  private begin(thing: string, format: Format, payload: Uint8Array): Report | Judging {
    const at = this.now();
    let doc: unknown;
    let exactId: bigint | undefined;
    let undecodable: ReportError | undefined;
    try {
      doc = decodeReport(payload, format);
      exactId = peekReportId(doc);
    } catch (err) {
      if (!(err instanceof ReportError)) throw err;
      undecodable = err;
    }
    const report = (err?: ReportError): Report => {
      const r: Report = { reportId: exactId === undefined ? undefined : Number(exactId), format, doc, verdict: err ? 'REJECTED' : 'ACCEPTED', at };
      if (exactId !== undefined) r.exactId = String(exactId);
      if (err) Object.assign(r, { errorCode: err.code, errorMessage: err.message });
      return r;
    };
    // nothing is kept for a name that fails validation: no state, no recent report
    const badName = thingNameError(thing);
    if (badName) return report(new ReportError(ErrorCode.InvalidPayload, badName));
    const t = this.thing(thing);
    const digest = exactId === undefined ? undefined : createHash('sha256').update(payload).digest().subarray(0, 16);
    const seen = digest && t.answers.find((a) => a.id === exactId && a.digest.equals(digest));
    if (seen) return { ...report(seen.errorCode ? new ReportError(seen.errorCode as ErrorCode, seen.errorMessage!) : undefined), at: seen.at, doc: undefined, redelivery: true };
    return { thing, at, doc, exactId, undecodable, t, digest, report };
  }

  /** The verdict `check` gives (it throws the ReportError that rejects), remembered. */
  private finish(c: Judging, check: () => void): Report {
    let r: Report;
    try {
      check();
      r = c.report();
    } catch (err) {
      if (!(err instanceof ReportError)) throw err;
      r = c.report(err);
    }
    if (c.digest) {
      c.t.answers.push({ digest: c.digest, id: c.exactId!, verdict: r.verdict, errorCode: r.errorCode, errorMessage: r.errorMessage, at: c.at });
      if (c.t.answers.length > ANSWERS_KEPT) c.t.answers.shift();
    }
    if (this.keep > 0) {
      this.recent.push({ thing: c.thing, ...r });
      if (this.recent.length > this.keep) this.recent.shift();
    }
    return r;
  }

  /** Throws Throttled when `at` comes less than minPeriod after the last accepted report. */
  private throttle(lastAt: number | undefined, at: number): void {
    if (lastAt !== undefined && at - lastAt < this.minPeriod * 1000) {
      const since = ((at - lastAt) / 1000).toFixed(3).replace(/\.?0+$/, '');
      throw new ReportError(ErrorCode.Throttled, `Report throttled: ${since} s after the last accepted report, ${this.minPeriod} s at least`);
    }
  }

  /** The thing's reports among the most recent (`keep` of all things), oldest first. */
  reports(thing: string): Report[] {
    return this.recent.filter((r) => r.thing === thing).map(({ thing: _, ...r }) => r);
  }

  /** The things held in memory, the one that reported longest ago first. */
  thingNames(): string[] {
    return [...this.things.keys()];
  }

  private thing(name: string): Thing {
    let t = this.things.get(name);
    if (t) this.things.delete(name);
    else t = { answers: [] };
    this.things.set(name, t);
    if (this.things.size > this.maxThings) {
      const oldest = this.things.keys().next().value!;
      this.things.delete(oldest);
      this.onEvict(oldest);
    }
    return t;
  }
}

/** The response AWS publishes on .../accepted or .../rejected: thingName, reportId (when known), status,
 * statusDetails {ErrorCode, ErrorMessage} when rejected, timestamp in epoch ms. */
export function responseBody(thing: string, r: Report): Record<string, unknown> {
  const body: Record<string, unknown> = { thingName: thing };
  if (r.exactId !== undefined) body.reportId = Number.isSafeInteger(Number(r.exactId)) ? Number(r.exactId) : BigInt(r.exactId);
  else if (r.reportId !== undefined) body.reportId = r.reportId;
  body.status = r.verdict;
  if (r.verdict === 'REJECTED') body.statusDetails = { ErrorCode: r.errorCode, ErrorMessage: r.errorMessage };
  body.timestamp = r.at;
  return body;
}

/** A response in the report's own format (a report id beyond 2^53 written exactly in both). */
export function encodeResponse(body: Record<string, unknown>, format: Format): Buffer {
  return Buffer.from(format === 'json' ? stringifyJson(body)! : cborg.encode(body));
}
