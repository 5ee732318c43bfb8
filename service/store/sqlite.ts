// The SQLite store (better-sqlite3): one file, created on first open, WAL journal. better-sqlite3 is synchronous,
// so a thing's read-evaluate-write runs with nothing else in between.
import Database from 'better-sqlite3';
import { DAY, emptyState, retentionOf, type Commit, type Store, type StoreOptions, type Violation } from './store.ts';
import type { ThingState } from '../detect/evaluate.ts';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS things (
  thing TEXT PRIMARY KEY,
  last_report_id INTEGER,
  last_at INTEGER,
  state TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS reports (
  thing TEXT NOT NULL,
  report_id INTEGER NOT NULL,
  at INTEGER NOT NULL,
  metrics TEXT NOT NULL,
  UNIQUE (thing, report_id)
);
CREATE INDEX IF NOT EXISTS reports_at ON reports (at);
CREATE TABLE IF NOT EXISTS cloud_metrics (
  thing TEXT NOT NULL,
  at INTEGER NOT NULL,
  metrics TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS cloud_metrics_thing ON cloud_metrics (thing, at);
CREATE INDEX IF NOT EXISTS cloud_metrics_at ON cloud_metrics (at);
CREATE TABLE IF NOT EXISTS violations (
  id TEXT PRIMARY KEY,
  thing TEXT NOT NULL,
  profile TEXT NOT NULL,
  behavior TEXT NOT NULL,
  metric TEXT NOT NULL,
  started_at INTEGER NOT NULL,
  ended_at INTEGER,
  last_value TEXT NOT NULL,
  last_at INTEGER NOT NULL,
  behavior_doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS violations_thing ON violations (thing, started_at);
CREATE INDEX IF NOT EXISTS violations_ended ON violations (ended_at);
CREATE TABLE IF NOT EXISTS samples (
  profile TEXT NOT NULL,
  behavior TEXT NOT NULL,
  thing TEXT NOT NULL,
  at INTEGER NOT NULL,
  value REAL NOT NULL,
  PRIMARY KEY (profile, behavior, thing)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS samples_value ON samples (profile, behavior, value);
CREATE TABLE IF NOT EXISTS last_accepted (
  thing TEXT PRIMARY KEY,
  report_id INTEGER NOT NULL,
  at INTEGER NOT NULL,
  digest BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS profiles (
  name TEXT PRIMARY KEY,
  doc TEXT NOT NULL,
  updated_at INTEGER NOT NULL
);
`;

function violationOf(r: any): Violation {
  return {
    id: r.id,
    thing: r.thing,
    profile: r.profile,
    behavior: r.behavior,
    metric: r.metric,
    startedAt: r.started_at,
    endedAt: r.ended_at,
    lastValue: JSON.parse(r.last_value),
    lastAt: r.last_at,
    behaviorDoc: JSON.parse(r.behavior_doc),
  };
}

/** Opens (creating when absent) the SQLite file; ':memory:' for a store that lives as long as the process. */
export function openSqlite(file: string, opts: StoreOptions = {}): Store {
  const retentionDays = retentionOf(opts);
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  // WAL with synchronous NORMAL: a crash loses at most the last transactions, never the file's consistency
  db.pragma('synchronous = NORMAL');
  db.pragma('busy_timeout = 5000');
  // a fleet's rows are touched at random: 64 MB of page cache and the file mapped (reads without a syscall each)
  db.pragma('cache_size = -65536');
  db.pragma('mmap_size = 268435456');
  db.exec(SCHEMA);
  const q = {
    getThing: db.prepare('SELECT state FROM things WHERE thing = ?').pluck(),
    putThing: db.prepare(
      'INSERT INTO things (thing, last_report_id, last_at, state) VALUES (?, ?, ?, ?) ON CONFLICT (thing) DO UPDATE SET last_report_id = excluded.last_report_id, last_at = excluded.last_at, state = excluded.state',
    ),
    putReport: db.prepare('INSERT OR IGNORE INTO reports (thing, report_id, at, metrics) VALUES (?, ?, ?, ?)'),
    putCloud: db.prepare('INSERT INTO cloud_metrics (thing, at, metrics) VALUES (?, ?, ?)'),
    open: db.prepare(
      'INSERT INTO violations (id, thing, profile, behavior, metric, started_at, ended_at, last_value, last_at, behavior_doc) VALUES (?, ?, ?, ?, ?, ?, NULL, ?, ?, ?)',
    ),
    touch: db.prepare('UPDATE violations SET last_value = ?, last_at = ? WHERE id = ?'),
    close: db.prepare('UPDATE violations SET last_value = ?, last_at = ?, ended_at = ? WHERE id = ?'),
    sample: db.prepare(
      'INSERT INTO samples (profile, behavior, thing, at, value) VALUES (?, ?, ?, ?, ?) ON CONFLICT (profile, behavior, thing) DO UPDATE SET at = excluded.at, value = excluded.value',
    ),
    // the WHERE of an upsert's update: a row that fails it is left as it is, and changes is 0
    claim: db.prepare(
      'INSERT INTO last_accepted (thing, report_id, at, digest) VALUES (?, ?, ?, ?) ON CONFLICT (thing) DO UPDATE SET report_id = excluded.report_id, at = excluded.at, digest = excluded.digest WHERE last_accepted.report_id < excluded.report_id AND last_accepted.at <= ?',
    ),
    accepted: db.prepare('SELECT report_id AS id, at, digest FROM last_accepted WHERE thing = ?').safeIntegers(),
    count: db.prepare('SELECT count(*) FROM samples WHERE profile = ? AND behavior = ? AND at >= ?').pluck(),
    nth: db.prepare('SELECT value FROM samples WHERE profile = ? AND behavior = ? AND at >= ? ORDER BY value LIMIT 1 OFFSET ?').pluck(),
  };
  const updateOne = db.transaction((thing: string, evaluate: (s: ThingState) => Commit | null): Commit | null => {
    const raw = q.getThing.get(thing) as string | undefined;
    const c = evaluate(raw ? JSON.parse(raw) : emptyState());
    if (!c) return null;
    const s = c.state;
    q.putThing.run(thing, s.lastReportId ?? null, s.lastAt ?? null, JSON.stringify(s));
    if (c.report) q.putReport.run(thing, c.report.reportId, c.report.at, JSON.stringify(c.report.metrics));
    if (c.cloud) q.putCloud.run(thing, c.cloud.at, JSON.stringify(c.cloud.metrics));
    for (const v of c.violations) {
      if (v.kind === 'open') {
        const x = v.violation;
        q.open.run(x.id, x.thing, x.profile, x.behavior, x.metric, x.startedAt, JSON.stringify(x.lastValue), x.lastAt, JSON.stringify(x.behaviorDoc));
      } else if (v.kind === 'update') q.touch.run(JSON.stringify(v.value), v.at, v.id);
      else q.close.run(JSON.stringify(v.value), v.at, v.at, v.id);
    }
    for (const x of c.samples) q.sample.run(x.profile, x.behavior, thing, x.at, x.value);
    return c;
  });
  // Group commit: the updates asked for in one turn of the event loop share one transaction (each in a savepoint of
  // its own, so one that throws takes only itself back). A commit writes every page it touched to the WAL; reports
  // of many things touch many of the same index pages, so a batch costs far less than as many commits.
  let queue: { thing: string; evaluate: (s: ThingState) => Commit | null; resolve: (c: Commit | null) => void; reject: (e: unknown) => void }[] = [];
  const flush = () => {
    const batch = queue;
    queue = [];
    const results: ({ ok: Commit | null } | { err: unknown })[] = [];
    db.transaction(() => {
      for (const u of batch) {
        try {
          results.push({ ok: updateOne(u.thing, u.evaluate) });
        } catch (err) {
          results.push({ err });
        }
      }
    })();
    batch.forEach((u, i) => {
      const r = results[i];
      if ('ok' in r) u.resolve(r.ok);
      else u.reject(r.err);
    });
  };
  const flushSafely = () => {
    const batch = queue;
    try {
      flush();
    } catch (err) {
      // the commit itself failed (disk full, ...): every update of the batch failed with it
      for (const u of batch) u.reject(err);
    }
  };
  const pruneTx = db.transaction((cutoff: number) => {
    let n = db.prepare('DELETE FROM reports WHERE at < ?').run(cutoff).changes;
    n += db.prepare('DELETE FROM cloud_metrics WHERE at < ?').run(cutoff).changes;
    n += db.prepare('DELETE FROM violations WHERE ended_at IS NOT NULL AND ended_at < ?').run(cutoff).changes;
    n += db.prepare('DELETE FROM samples WHERE at < ?').run(cutoff).changes;
    n += db.prepare('DELETE FROM last_accepted WHERE at < ?').run(cutoff).changes;
    return n;
  });
  const lastAccepted = async (thing: string) => {
    const r = q.accepted.get(thing) as { id: bigint; at: bigint; digest: Buffer } | undefined;
    return r && { id: r.id, at: Number(r.at), digest: r.digest };
  };
  const prune = (now = Date.now()) => pruneTx(now - retentionDays * DAY);
  prune();
  const every = opts.pruneEveryMs ?? 3_600_000;
  const timer = every > 0 ? setInterval(() => prune(), every).unref() : undefined;
  let closed = false;

  return {
    kind: 'sqlite',
    retentionDays,
    update(thing, evaluate) {
      if (closed) return Promise.reject(new Error('store closed'));
      return new Promise((resolve, reject) => {
        queue.push({ thing, evaluate, resolve, reject });
        if (queue.length === 1) setImmediate(flushSafely);
      });
    },
    async lastAccepted(thing) {
      return lastAccepted(thing);
    },
    async claim(thing, next, minPeriodMs) {
      if (q.claim.run(thing, next.id, next.at, next.digest, next.at - minPeriodMs).changes) return undefined;
      return lastAccepted(thing);
    },
    async percentile(profile, behavior, p, since) {
      const n = q.count.get(profile, behavior, since) as number;
      if (!n) return undefined;
      const i = Math.min(n - 1, Math.max(0, Math.ceil(p * n) - 1));
      return q.nth.get(profile, behavior, since, i) as number;
    },
    async putProfile(name, doc) {
      db.prepare('INSERT INTO profiles (name, doc, updated_at) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET doc = excluded.doc, updated_at = excluded.updated_at').run(
        name,
        JSON.stringify(doc),
        Date.now(),
      );
    },
    async deleteProfile(name) {
      return db.prepare('DELETE FROM profiles WHERE name = ?').run(name).changes > 0;
    },
    async profiles() {
      return (db.prepare('SELECT name, doc, updated_at FROM profiles ORDER BY name').all() as any[]).map((r) => ({ name: r.name, doc: JSON.parse(r.doc), updatedAt: r.updated_at }));
    },
    async things() {
      const rows = db
        .prepare(
          'SELECT t.thing, t.last_report_id, t.last_at, (SELECT count(*) FROM violations v WHERE v.thing = t.thing AND v.ended_at IS NULL) AS active FROM things t ORDER BY t.thing',
        )
        .all() as any[];
      return rows.map((r) => ({ thing: r.thing, lastReportId: r.last_report_id, lastAt: r.last_at, active: r.active }));
    },
    async reports(thing, o = {}) {
      const rows = db
        .prepare('SELECT report_id, at, metrics FROM reports WHERE thing = ? AND at >= ? AND at <= ? ORDER BY report_id DESC LIMIT ?')
        .all(thing, o.since ?? 0, o.until ?? Number.MAX_SAFE_INTEGER, o.limit ?? -1) as any[];
      return rows.reverse().map((r) => ({ reportId: r.report_id, at: r.at, metrics: JSON.parse(r.metrics) }));
    },
    async cloudMetrics(thing, o = {}) {
      const rows = db
        .prepare('SELECT at, metrics FROM cloud_metrics WHERE thing = ? AND at >= ? AND at <= ? ORDER BY at DESC LIMIT ?')
        .all(thing, o.since ?? 0, o.until ?? Number.MAX_SAFE_INTEGER, o.limit ?? -1) as any[];
      return rows.reverse().map((r) => ({ at: r.at, metrics: JSON.parse(r.metrics) }));
    },
    async violations(o = {}) {
      const where = [o.all ? '1' : 'ended_at IS NULL', o.thing === undefined ? '1' : 'thing = @thing'].join(' AND ');
      return (db.prepare(`SELECT * FROM violations WHERE ${where} ORDER BY started_at DESC, id`).all(o.thing === undefined ? {} : { thing: o.thing }) as any[]).map(violationOf);
    },
    async prune(now) {
      return prune(now);
    },
    async close() {
      if (closed) return;
      closed = true;
      if (timer) clearInterval(timer);
      if (queue.length) flushSafely();
      db.close();
    },
  };
}
