// The fleet owner's commands, on the store the service writes (SQLite file or PostgreSQL URL):
//
//   npm run defender -- things                                  every thing, its last report, active violations
//   npm run defender -- metrics THING [--since 1h] [--limit N]  a thing's metrics over time
//   npm run defender -- violations [--all] [--thing THING]      active violations (--all: with the history)
//   npm run defender -- profile validate FILE...                check profiles, print warnings
//   npm run defender -- profile load FILE...                    check and put into the store (a running service picks them up)
//   npm run defender -- profile list | profile delete NAME
//   npm run defender -- serve --broker URL [--client-id ID] [--share-group GROUP [--share-prefix P]] [--profile FILE]...
//                        [--ca FILE --cert FILE --key FILE [--alert-cert FILE --alert-key FILE]]
//                                                               a collector on an external broker, Detect on the store
//
// Options: --store PATH|postgres://... (default $DEFENDER_STORE or defender.db), --json (machine-readable output).
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { loadProfile, ProfileError } from '../detect/profile.ts';
import { openStore, type Store } from '../store/store.ts';
import { startService } from '../service.ts';
import { attachDetect } from '../detect/detect.ts';
import type { MetricValue } from '../detect/metrics.ts';

const USAGE = `usage: defender [--store PATH|postgres://URL] [--json] COMMAND
  things                                   every thing, its last report and active violations
  metrics THING [--since 1h|ISO] [--limit N] [--metric NAME]   a thing's metrics over time
  violations [--all] [--thing THING]       active violations (--all: the history too)
  profile validate FILE...                 check security profiles (AWS's format)
  profile load FILE...                     check them and put them into the store
  profile list                             the profiles in the store
  profile delete NAME                      remove one
  serve --broker mqtt[s]://HOST:PORT [--client-id ID] [--share-group GROUP [--share-prefix PREFIX]]
        [--profile FILE]... [--min-period S]
        [--ca FILE --cert FILE --key FILE [--alert-cert FILE --alert-key FILE]]
                                           a collector on the broker, Detect on the store, until SIGINT/SIGTERM;
                                           collectors of one share group (each with its own --client-id and the
                                           same --store) take turns at the reports. An mqtts:// broker needs the
                                           fleet CA and the collector's certificate and key (PEM); Detect publishes
                                           its alerts with a certificate of its own (--alert-cert, --alert-key:
                                           CN defender-detect in the shipped mosquitto ACL), else logs them only`;

/** What is wrong with serve's options, or undefined: a broker, a client id in a share group, and TLS files that
 * go together and exist (a missing one said here, not as a stack trace from the MQTT client). */
function serveProblem(o: Record<string, unknown>): string | undefined {
  if (!o.broker) return 'serve needs --broker';
  if (o['share-group'] !== undefined && !o['client-id']) return "serve: with --share-group a --client-id of this collector's own";
  const files = ['ca', 'cert', 'key', 'alert-cert', 'alert-key'].filter((k) => o[k] !== undefined);
  const secure = String(o.broker).startsWith('mqtts://');
  if (secure && !['ca', 'cert', 'key'].every((k) => files.includes(k))) return 'serve: an mqtts:// broker needs --ca, --cert and --key';
  if (!secure && files.length) return 'serve: --ca, --cert, --key, --alert-cert and --alert-key go with an mqtts:// broker';
  if (files.includes('alert-cert') !== files.includes('alert-key')) return 'serve: --alert-cert and --alert-key go together';
  for (const k of files) if (!existsSync(String(o[k]))) return `serve: --${k} ${String(o[k])}: no such file`;
  return undefined;
}

export interface Io {
  out: (line: string) => void;
  err: (line: string) => void;
}

/** "90s", "15m", "2h", "7d" before now, or an ISO date; epoch ms. */
function since(v: string, now: number): number {
  const m = /^(\d+)([smhd])$/.exec(v);
  if (m) return now - Number(m[1]) * { s: 1e3, m: 6e4, h: 36e5, d: 864e5 }[m[2] as 's']!;
  const t = Date.parse(v);
  if (Number.isNaN(t)) throw new Error(`--since ${v}: not a duration (90s, 15m, 2h, 7d) nor a date`);
  return t;
}

const iso = (ms: number | null) => (ms === null ? '-' : new Date(ms).toISOString());
const show = (v: MetricValue | undefined) => (v === undefined ? '-' : Array.isArray(v) ? `[${v.join(' ')}]` : String(v));

/** Columns padded to their widest cell. */
function table(rows: string[][]): string[] {
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(w[i]))).join('  '));
}

/** `stop`: ends `serve` (the command line's SIGINT and SIGTERM do). */
export async function main(argv: string[], io: Io = { out: (l) => console.log(l), err: (l) => console.error(l) }, stop?: AbortSignal): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        store: { type: 'string', default: process.env.DEFENDER_STORE ?? 'defender.db' },
        json: { type: 'boolean', default: false },
        all: { type: 'boolean', default: false },
        thing: { type: 'string' },
        since: { type: 'string' },
        limit: { type: 'string' },
        metric: { type: 'string' },
        broker: { type: 'string' },
        'client-id': { type: 'string' },
        'share-group': { type: 'string' },
        'share-prefix': { type: 'string' },
        ca: { type: 'string' },
        cert: { type: 'string' },
        key: { type: 'string' },
        'alert-cert': { type: 'string' },
        'alert-key': { type: 'string' },
        profile: { type: 'string', multiple: true },
        'min-period': { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (err) {
    io.err(`${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  const { values: o, positionals: [cmd, ...args] } = parsed;
  if (o.help || !cmd) {
    (o.help ? io.out : io.err)(USAGE);
    return o.help ? 0 : 2;
  }
  const json = (v: unknown) => io.out(JSON.stringify(v, null, 2));

  if (cmd === 'profile' && args[0] === 'validate') {
    if (args.length < 2) return (io.err('profile validate FILE...'), 2);
    let bad = 0;
    for (const f of args.slice(1)) {
      try {
        const p = loadProfile(f);
        io.out(`${f}: ${p.name}, ${p.behaviors.length} behaviour(s), valid`);
        for (const w of p.warnings) io.out(`  warning: ${w}`);
      } catch (err) {
        if (!(err instanceof ProfileError)) throw err;
        io.err(`${f}: invalid: ${err.message}`);
        bad++;
      }
    }
    return bad ? 1 : 0;
  }

  if (cmd === 'serve') {
    const problem = serveProblem(o);
    if (problem) return (io.err(`${problem}\n${USAGE}`), 2);
  }
  let store: Store;
  try {
    store = await openStore(o.store!, { pruneEveryMs: 0 });
  } catch (err) {
    io.err(`store ${o.store}: ${(err as Error).message}`);
    return 1;
  }
  try {
    switch (cmd) {
      case 'serve': {
        const minPeriod = o['min-period'] === undefined ? undefined : Number(o['min-period']);
        const tls = o.ca !== undefined;
        const svc = await startService({
          broker: o.broker,
          brokerTls: tls ? { caFile: o.ca!, certFile: o.cert!, keyFile: o.key! } : undefined,
          clientId: o['client-id'],
          shareGroup: o['share-group'],
          sharePrefix: o['share-prefix'],
          // shared or not, the last report ids in the store: a restarted collector still refuses a replayed id
          ledger: store,
          minPeriod,
          log: io.out,
        });
        const alertTls = o['alert-cert'] !== undefined ? { caFile: o.ca!, certFile: o['alert-cert']!, keyFile: o['alert-key']! } : undefined;
        // under TLS without an identity for the alert client, alerts go to the log only (a client without a
        // certificate would not be admitted)
        const logOnly = tls && !alertTls;
        if (logOnly) io.out('alerts: in the log only (no --alert-cert: not published on the broker)');
        const detect = await attachDetect(svc, { store, profiles: o.profile, log: io.out, alertTls, alerts: logOnly ? { topic: false } : undefined });
        io.out(`collecting on ${o.broker}${o['share-group'] === undefined ? '' : ` in share group ${o['share-group']}`}, store ${o.store}`);
        const signal = stop ?? signalled();
        await new Promise((r) => (signal.aborted ? r(undefined) : signal.addEventListener('abort', r, { once: true })));
        await svc.close();
        // (closes the store: the finally below finds it closed)
        await detect.close();
        return 0;
      }
      case 'things': {
        const things = await store.things();
        if (o.json) return (json(things), 0);
        if (!things.length) return (io.out('no thing has reported'), 0);
        const rows = [['THING', 'LAST REPORT', 'AT', 'ACTIVE VIOLATIONS', 'LAST METRICS']];
        for (const t of things) {
          const [last] = await store.reports(t.thing, { limit: 1 });
          const m = last ? Object.entries(last.metrics).map(([k, v]) => `${k.replace(/^aws:/, '')}=${show(v)}`).join(' ') : '';
          rows.push([t.thing, String(t.lastReportId ?? '-'), iso(t.lastAt), String(t.active), m]);
        }
        table(rows).forEach((l) => io.out(l));
        return 0;
      }
      case 'metrics': {
        const thing = args[0];
        if (!thing) return (io.err('metrics THING'), 2);
        const limit = o.limit === undefined ? 50 : Number(o.limit);
        if (!(Number.isInteger(limit) && limit > 0)) return (io.err('--limit is a count'), 2);
        const window = { since: o.since ? since(o.since, Date.now()) : undefined, limit };
        // the reports' metrics and the broker's (cloud-side, reportId null), one timeline
        const reports = [...(await store.reports(thing, window)), ...(await store.cloudMetrics(thing, window)).map((r) => ({ reportId: null, ...r }))]
          .sort((a, b) => a.at - b.at)
          .slice(-limit);
        if (o.json) return (json(reports), 0);
        if (!reports.length) return (io.out(`no reports from ${thing}`), 0);
        const names = o.metric ? [o.metric] : [...new Set(reports.flatMap((r) => Object.keys(r.metrics)))];
        const rows = [['AT', 'REPORT', ...names.map((n) => n.replace(/^aws:/, ''))]];
        for (const r of reports) rows.push([iso(r.at), r.reportId === null ? 'broker' : String(r.reportId), ...names.map((n) => show(r.metrics[n]))]);
        table(rows).forEach((l) => io.out(l));
        return 0;
      }
      case 'violations': {
        const list = await store.violations({ all: o.all, thing: o.thing });
        if (o.json) return (json(list), 0);
        if (!list.length) return (io.out(o.all ? 'no violations' : 'no active violations'), 0);
        const rows = [['ID', 'THING', 'PROFILE/BEHAVIOUR', 'METRIC', 'LAST VALUE', 'STARTED', 'ENDED']];
        for (const v of list) rows.push([v.id, v.thing, `${v.profile}/${v.behavior}`, v.metric, show(v.lastValue), iso(v.startedAt), v.endedAt === null ? 'active' : iso(v.endedAt)]);
        table(rows).forEach((l) => io.out(l));
        return 0;
      }
      case 'profile': {
        const [sub, ...rest] = args;
        if (sub === 'list') {
          const list = await store.profiles();
          if (o.json) return (json(list), 0);
          if (!list.length) return (io.out('no profiles'), 0);
          for (const p of list) io.out(`${p.name}: ${(p.doc.behaviors as unknown[] | undefined)?.length ?? 0} behaviour(s), loaded ${iso(p.updatedAt)}`);
          return 0;
        }
        if (sub === 'delete' && rest.length === 1) {
          if (await store.deleteProfile(rest[0])) return (io.out(`${rest[0]}: deleted`), 0);
          return (io.err(`${rest[0]}: no such profile`), 1);
        }
        if (sub === 'load' && rest.length) {
          let bad = 0;
          for (const f of rest) {
            try {
              const p = loadProfile(f);
              for (const w of p.warnings) io.out(`  warning: ${w}`);
              await store.putProfile(p.name, p.stored);
              io.out(`${f}: ${p.name} loaded (${p.behaviors.length} behaviour(s))`);
            } catch (err) {
              if (!(err instanceof ProfileError)) throw err;
              io.err(`${f}: invalid, not loaded: ${err.message}`);
              bad++;
            }
          }
          return bad ? 1 : 0;
        }
        io.err(USAGE);
        return 2;
      }
      default:
        io.err(`unknown command ${cmd}\n${USAGE}`);
        return 2;
    }
  } catch (err) {
    io.err((err as Error).message);
    return 1;
  } finally {
    await store.close();
  }
}

/** Aborted by the first SIGINT or SIGTERM. */
function signalled(): AbortSignal {
  const ac = new AbortController();
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => ac.abort());
  return ac.signal;
}

if (process.argv[1] && import.meta.filename === process.argv[1]) {
  // output piped into head: stop quietly when the reader has gone
  process.stdout.on('error', (err: NodeJS.ErrnoException) => (err.code === 'EPIPE' ? process.exit(0) : undefined));
  process.exitCode = await main(process.argv.slice(2));
}
