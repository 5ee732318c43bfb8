// The verdict on each report, with what the service remembers per thing: the last accepted report (its id, which
// the next must exceed, and its time, for throttling) and the most recent reports. No I/O: service.ts feeds it
// payloads and publishes the responses it builds.
import * as cborg from 'cborg';
import type { Format } from './topics.ts';
import { decodeReport, validateReport, peekReportId, thingNameError, ReportError, ErrorCode, MAX_LIST } from './validate.ts';

export type Verdict = 'ACCEPTED' | 'REJECTED';

export interface Report {
  /** The header's report id when it is an integer (even on a rejected report), else undefined. */
  reportId: number | undefined;
  format: Format;
  /** The decoded document (undefined when it did not decode). */
  doc: any;
  verdict: Verdict;
  errorCode?: string;
  errorMessage?: string;
  /** When it was judged (epoch ms). */
  at: number;
}

export interface JudgeOptions {
  /** Seconds a thing must wait after an accepted report before the next; AWS throttles under 300. May be fractional. */
  minPeriod?: number;
  /** Reports remembered per thing (default 20). */
  keep?: number;
  /** Entries allowed per list (default MAX_LIST). */
  maxList?: number;
  /** Clock in epoch ms (default Date.now), for tests. */
  now?: () => number;
}

interface Thing {
  lastId?: bigint;
  lastAt?: number;
  reports: Report[];
}

export class Judge {
  readonly minPeriod: number;
  readonly keep: number;
  readonly maxList: number;
  private readonly now: () => number;
  private readonly things = new Map<string, Thing>();

  constructor(opts: JudgeOptions = {}) {
    this.minPeriod = opts.minPeriod ?? 300;
    this.keep = opts.keep ?? 20;
    this.maxList = opts.maxList ?? MAX_LIST;
    this.now = opts.now ?? Date.now;
    if (!(this.minPeriod >= 0)) throw new RangeError('minPeriod is seconds, 0 or more');
    if (!(Number.isInteger(this.keep) && this.keep >= 1)) throw new RangeError('keep is a count, 1 or more');
  }

  /** Judges one report published by `thing` in `format`, remembers it and returns it. */
  judge(thing: string, format: Format, payload: Uint8Array): Report {
    const at = this.now();
    const t = this.thing(thing);
    let doc: unknown;
    let reportId: number | undefined;
    let report: Report;
    try {
      doc = decodeReport(payload, format);
      reportId = peekReportId(doc);
      const badName = thingNameError(thing);
      if (badName) throw new ReportError(ErrorCode.InvalidPayload, badName);
      // Throttling comes before the schema, as a rate limit would; only accepted reports count.
      if (t.lastAt !== undefined && at - t.lastAt < this.minPeriod * 1000) {
        const since = ((at - t.lastAt) / 1000).toFixed(3).replace(/\.?0+$/, '');
        throw new ReportError(ErrorCode.Throttled, `Report throttled: ${since} s after the last accepted report, ${this.minPeriod} s at least`);
      }
      const { exactId: id } = validateReport(doc, { maxList: this.maxList });
      // The guide: report_id is a "monotonically increasing value"
      if (t.lastId !== undefined && id <= t.lastId) {
        throw new ReportError(ErrorCode.InvalidPayload, `Malformed metrics report: report_id ${id} is not greater than ${t.lastId}, the last accepted`);
      }
      t.lastId = id;
      t.lastAt = at;
      report = { reportId, format, doc, verdict: 'ACCEPTED', at };
    } catch (err) {
      if (!(err instanceof ReportError)) throw err;
      report = { reportId, format, doc, verdict: 'REJECTED', errorCode: err.code, errorMessage: err.message, at };
    }
    t.reports.push(report);
    if (t.reports.length > this.keep) t.reports.shift();
    return report;
  }

  /** The thing's most recent reports, oldest first (a copy). */
  reports(thing: string): Report[] {
    return [...(this.things.get(thing)?.reports ?? [])];
  }

  /** Every thing that has published a report. */
  thingNames(): string[] {
    return [...this.things.keys()];
  }

  private thing(name: string): Thing {
    let t = this.things.get(name);
    if (!t) this.things.set(name, (t = { reports: [] }));
    return t;
  }
}

/** The response AWS publishes on .../accepted or .../rejected: thingName, reportId (when known), status,
 * statusDetails {ErrorCode, ErrorMessage} when rejected, timestamp in epoch ms. */
export function responseBody(thing: string, r: Report): Record<string, unknown> {
  const body: Record<string, unknown> = { thingName: thing };
  if (r.reportId !== undefined) body.reportId = r.reportId;
  body.status = r.verdict;
  if (r.verdict === 'REJECTED') body.statusDetails = { ErrorCode: r.errorCode, ErrorMessage: r.errorMessage };
  body.timestamp = r.at;
  return body;
}

/** A response in the report's own format. */
export function encodeResponse(body: Record<string, unknown>, format: Format): Buffer {
  return Buffer.from(format === 'json' ? JSON.stringify(body) : cborg.encode(body));
}
