// The PostgreSQL store (pg), for fleets that outgrow one machine: several collectors share it. A thing's
// read-evaluate-write runs in one transaction that holds the thing's row (SELECT ... FOR UPDATE), so two collectors
// given consecutive reports of one thing take turns, and the second sees the first's state and report id.
//
// Group commit: the updates asked for while earlier ones are in flight share one transaction, in 4 round trips
// whatever their number (BEGIN, one locking read of all their things, one statement for every write, COMMIT; 2 more
// when some things are new), where one transaction per report took 4 to 8. Rows are locked in thing order, so two
// collectors' batches wait for each other rather than deadlock (except around new things: PostgreSQL then aborts
// one batch, which is run again).
import pg from 'pg';
import { DAY, emptyState, retentionOf, type Commit, type Store, type StoreOptions, type ThingState, type Violation } from './store.ts';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS things (
  thing TEXT PRIMARY KEY,
  last_report_id BIGINT,
  last_at BIGINT,
  state JSONB NOT NULL
);
CREATE TABLE IF NOT EXISTS reports (
  thing TEXT NOT NULL,
  report_id BIGINT NOT NULL,
  at BIGINT NOT NULL,
  metrics JSONB NOT NULL,
  PRIMARY KEY (thing, report_id)
);
CREATE INDEX IF NOT EXISTS reports_at ON reports (at);
CREATE TABLE IF NOT EXISTS cloud_metrics (
  thing TEXT NOT NULL,
  at BIGINT NOT NULL,
  metrics JSONB NOT NULL
);
CREATE INDEX IF NOT EXISTS cloud_metrics_thing ON cloud_metrics (thing, at);
CREATE INDEX IF NOT EXISTS cloud_metrics_at ON cloud_metrics (at);
CREATE TABLE IF NOT EXISTS violations (
  id TEXT PRIMARY KEY,
  thing TEXT NOT NULL,
  profile TEXT NOT NULL,
  behavior TEXT NOT NULL,
  metric TEXT NOT NULL,
  started_at BIGINT NOT NULL,
  ended_at BIGINT,
  last_value JSONB NOT NULL,
  last_at BIGINT NOT NULL,
  behavior_doc JSONB NOT NULL
);
CREATE INDEX IF NOT EXISTS violations_thing ON violations (thing, started_at);
CREATE INDEX IF NOT EXISTS violations_ended ON violations (ended_at);
CREATE TABLE IF NOT EXISTS samples (
  profile TEXT NOT NULL,
  behavior TEXT NOT NULL,
  thing TEXT NOT NULL,
  at BIGINT NOT NULL,
  value DOUBLE PRECISION NOT NULL,
  PRIMARY KEY (profile, behavior, thing)
);
CREATE INDEX IF NOT EXISTS samples_value ON samples (profile, behavior, value);
CREATE TABLE IF NOT EXISTS last_accepted (
  thing TEXT PRIMARY KEY,
  report_id BIGINT NOT NULL,
  at BIGINT NOT NULL,
  digest BYTEA NOT NULL
);
CREATE TABLE IF NOT EXISTS profiles (
  name TEXT PRIMARY KEY,
  doc JSONB NOT NULL,
  updated_at BIGINT NOT NULL
);
`;

interface Pending {
  thing: string;
  evaluate: (state: ThingState) => Commit | null;
  resolve: (c: Commit | null) => void;
  reject: (err: unknown) => void;
}

/** Updates in one transaction at most. */
const MAX_BATCH = 256;
/** Batches in flight at once (each on a connection of the pool). */
const BATCHES = 4;

// BIGINT comes back as a string by default; every BIGINT here is an epoch ms or a report id (below 2^53 in practice)
pg.types.setTypeParser(20, (s: string) => Number(s));

function violationOf(r: any): Violation {
  return {
    id: r.id,
    thing: r.thing,
    profile: r.profile,
    behavior: r.behavior,
    metric: r.metric,
    startedAt: r.started_at,
    endedAt: r.ended_at,
    lastValue: r.last_value,
    lastAt: r.last_at,
    behaviorDoc: r.behavior_doc,
  };
}

/** Connects to `url` (postgres://...) and creates the tables when absent. */
export async function openPostgres(url: string, opts: StoreOptions & { poolSize?: number } = {}): Promise<Store> {
  const retentionDays = retentionOf(opts);
  const pool = new pg.Pool({ connectionString: url, max: opts.poolSize ?? 10 });
  pool.on('error', () => {}); // an idle client's error: the next query reconnects
  // two collectors starting together: one creates the tables, the other waits for it
  const c0 = await pool.connect();
  try {
    await c0.query('SELECT pg_advisory_lock(727274)');
    await c0.query(SCHEMA);
  } finally {
    await c0.query('SELECT pg_advisory_unlock(727274)').catch(() => {});
    c0.release();
  }
  const prune = async (now = Date.now()) => {
    const cutoff = now - retentionDays * DAY;
    let n = (await pool.query('DELETE FROM reports WHERE at < $1', [cutoff])).rowCount ?? 0;
    n += (await pool.query('DELETE FROM cloud_metrics WHERE at < $1', [cutoff])).rowCount ?? 0;
    n += (await pool.query('DELETE FROM violations WHERE ended_at IS NOT NULL AND ended_at < $1', [cutoff])).rowCount ?? 0;
    n += (await pool.query('DELETE FROM samples WHERE at < $1', [cutoff])).rowCount ?? 0;
    n += (await pool.query('DELETE FROM last_accepted WHERE at < $1', [cutoff])).rowCount ?? 0;
    return n;
  };
  await prune();
  const lastAccepted = async (thing: string) => {
    // the id as text: BIGINT is parsed as a Number, exact only to 2^53
    const { rows } = await pool.query('SELECT report_id::text AS id, at, digest FROM last_accepted WHERE thing = $1', [thing]);
    return rows[0] && { id: BigInt(rows[0].id), at: rows[0].at as number, digest: rows[0].digest as Buffer };
  };
  const every = opts.pruneEveryMs ?? 3_600_000;
  const timer = every > 0 ? setInterval(() => void prune().catch(() => {}), every).unref() : undefined;
  let closed = false;

  let queue: Pending[] = [];
  let running = 0;
  let scheduled = false;
  const concurrency = Math.max(1, Math.min(BATCHES, (opts.poolSize ?? 10) - 1));
  /** Starts batches while connections allow, after the current turn of the event loop has queued its updates. */
  const schedule = () => {
    if (scheduled) return;
    scheduled = true;
    setImmediate(pump);
  };
  function pump() {
    scheduled = false;
    while (running < concurrency && queue.length) {
      // one update per thing in a batch: the next of a thing waits for the batch that holds its row
      const batch: Pending[] = [];
      const rest: Pending[] = [];
      const things = new Set<string>();
      for (const u of queue) {
        if (batch.length < MAX_BATCH && !things.has(u.thing)) {
          things.add(u.thing);
          batch.push(u);
        } else rest.push(u);
      }
      queue = rest;
      running++;
      void runBatch(batch).finally(() => {
        running--;
        if (queue.length) pump();
      });
    }
  }

  async function runBatch(batch: Pending[]): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        const results = await transaction(batch);
        batch.forEach((u, i) => ('err' in results[i] ? u.reject((results[i] as { err: unknown }).err) : u.resolve((results[i] as { ok: Commit | null }).ok)));
        return;
      } catch (err) {
        // deadlock_detected, serialization_failure: nothing was written; again
        if (attempt < 3 && ['40P01', '40001'].includes((err as { code?: string }).code ?? '')) continue;
        for (const u of batch) u.reject(err);
        return;
      }
    }
  }

  async function transaction(batch: Pending[]): Promise<({ ok: Commit | null } | { err: unknown })[]> {
    const c = await pool.connect();
    try {
      await c.query('BEGIN');
      const things = batch.map((u) => u.thing).sort();
      const states = new Map<string, ThingState>();
      const lock = async (names: string[]) => {
        const { rows } = await c.query('SELECT thing, state FROM things WHERE thing = ANY($1) ORDER BY thing FOR UPDATE', [names]);
        for (const r of rows) states.set(r.thing, r.state);
      };
      await lock(things);
      const missing = things.filter((t) => !states.has(t));
      if (missing.length) {
        // new things: make their rows, then lock them (another collector may have made some meanwhile)
        await c.query(`INSERT INTO things (thing, state) SELECT unnest($1::text[]), '{"b":{}}' ON CONFLICT (thing) DO NOTHING`, [missing]);
        await lock(missing);
      }
      const rows = { things: [] as unknown[], reports: [] as unknown[], cloud: [] as unknown[], samples: [] as unknown[], opened: [] as unknown[], changed: [] as unknown[] };
      const results = batch.map((u) => {
        try {
          const commit = u.evaluate(states.get(u.thing) ?? emptyState());
          if (!commit) return { ok: null };
          const st = commit.state;
          rows.things.push({ thing: u.thing, last_report_id: st.lastReportId ?? null, last_at: st.lastAt ?? null, state: st });
          if (commit.report) rows.reports.push({ thing: u.thing, report_id: commit.report.reportId, at: commit.report.at, metrics: commit.report.metrics });
          if (commit.cloud) rows.cloud.push({ thing: u.thing, at: commit.cloud.at, metrics: commit.cloud.metrics });
          for (const x of commit.samples) rows.samples.push({ ...x, thing: u.thing });
          for (const v of commit.violations) {
            if (v.kind === 'open') {
              const x = v.violation;
              rows.opened.push({ id: x.id, thing: x.thing, profile: x.profile, behavior: x.behavior, metric: x.metric, started_at: x.startedAt, last_value: x.lastValue, last_at: x.lastAt, behavior_doc: x.behaviorDoc });
            } else rows.changed.push({ id: v.id, at: v.at, value: v.value, close: v.kind === 'close' });
          }
          return { ok: commit };
        } catch (err) {
          return { err };
        }
      });
      if (rows.things.length) {
        await c.query(
          `WITH t AS (
             UPDATE things SET last_report_id = x.last_report_id, last_at = x.last_at, state = x.state
             FROM jsonb_to_recordset($1::jsonb) AS x(thing text, last_report_id bigint, last_at bigint, state jsonb) WHERE things.thing = x.thing),
           r AS (
             INSERT INTO reports (thing, report_id, at, metrics)
             SELECT * FROM jsonb_to_recordset($2::jsonb) AS x(thing text, report_id bigint, at bigint, metrics jsonb) ON CONFLICT DO NOTHING),
           k AS (
             INSERT INTO cloud_metrics (thing, at, metrics)
             SELECT * FROM jsonb_to_recordset($6::jsonb) AS x(thing text, at bigint, metrics jsonb)),
           s AS (
             INSERT INTO samples (profile, behavior, thing, at, value)
             SELECT * FROM jsonb_to_recordset($3::jsonb) AS x(profile text, behavior text, thing text, at bigint, value float8)
             ON CONFLICT (profile, behavior, thing) DO UPDATE SET at = excluded.at, value = excluded.value),
           o AS (
             INSERT INTO violations (id, thing, profile, behavior, metric, started_at, ended_at, last_value, last_at, behavior_doc)
             SELECT x.id, x.thing, x.profile, x.behavior, x.metric, x.started_at, NULL, x.last_value, x.last_at, x.behavior_doc
             FROM jsonb_to_recordset($4::jsonb) AS x(id text, thing text, profile text, behavior text, metric text, started_at bigint, last_value jsonb, last_at bigint, behavior_doc jsonb))
           UPDATE violations v SET last_value = x.value, last_at = x.at, ended_at = CASE WHEN x.close THEN x.at ELSE v.ended_at END
           FROM jsonb_to_recordset($5::jsonb) AS x(id text, at bigint, value jsonb, close boolean) WHERE v.id = x.id`,
          [rows.things, rows.reports, rows.samples, rows.opened, rows.changed, rows.cloud].map((r) => JSON.stringify(r)),
        );
      }
      await c.query('COMMIT');
      return results;
    } catch (err) {
      await c.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      c.release();
    }
  }

  return {
    kind: 'postgres',
    retentionDays,
    update(thing, evaluate) {
      if (closed) return Promise.reject(new Error('store closed'));
      return new Promise((resolve, reject) => {
        queue.push({ thing, evaluate, resolve, reject });
        schedule();
      });
    },
    lastAccepted,
    async claim(thing, next, minPeriodMs) {
      // The WHERE of the upsert's update is checked on the row as the last commit left it (the row locked): of two
      // collectors claiming one thing's report, one updates it and the other finds the WHERE false (rowCount 0).
      const r = await pool.query(
        `INSERT INTO last_accepted AS l (thing, report_id, at, digest) VALUES ($1, $2, $3, $4)
         ON CONFLICT (thing) DO UPDATE SET report_id = excluded.report_id, at = excluded.at, digest = excluded.digest
         WHERE l.report_id < excluded.report_id AND l.at <= $5::float8`,
        [thing, String(next.id), next.at, next.digest, next.at - minPeriodMs],
      );
      if (r.rowCount) return undefined;
      return lastAccepted(thing);
    },
    async percentile(profile, behavior, p, since) {
      const n = Number((await pool.query('SELECT count(*) AS n FROM samples WHERE profile = $1 AND behavior = $2 AND at >= $3', [profile, behavior, since])).rows[0].n);
      if (!n) return undefined;
      const i = Math.min(n - 1, Math.max(0, Math.ceil(p * n) - 1));
      const { rows } = await pool.query('SELECT value FROM samples WHERE profile = $1 AND behavior = $2 AND at >= $3 ORDER BY value LIMIT 1 OFFSET $4', [profile, behavior, since, i]);
      return rows[0]?.value;
    },
    async putProfile(name, doc) {
      await pool.query(
        'INSERT INTO profiles (name, doc, updated_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO UPDATE SET doc = excluded.doc, updated_at = excluded.updated_at',
        [name, JSON.stringify(doc), Date.now()],
      );
    },
    async deleteProfile(name) {
      return ((await pool.query('DELETE FROM profiles WHERE name = $1', [name])).rowCount ?? 0) > 0;
    },
    async profiles() {
      const { rows } = await pool.query('SELECT name, doc, updated_at FROM profiles ORDER BY name');
      return rows.map((r) => ({ name: r.name, doc: r.doc, updatedAt: r.updated_at }));
    },
    async things() {
      const { rows } = await pool.query(
        'SELECT t.thing, t.last_report_id, t.last_at, (SELECT count(*) FROM violations v WHERE v.thing = t.thing AND v.ended_at IS NULL)::int AS active FROM things t ORDER BY t.thing',
      );
      return rows.map((r) => ({ thing: r.thing, lastReportId: r.last_report_id, lastAt: r.last_at, active: r.active }));
    },
    async reports(thing, o = {}) {
      const { rows } = await pool.query('SELECT report_id, at, metrics FROM reports WHERE thing = $1 AND at >= $2 AND at <= $3 ORDER BY report_id DESC LIMIT $4', [
        thing,
        o.since ?? 0,
        o.until ?? Number.MAX_SAFE_INTEGER,
        o.limit ?? null,
      ]);
      return rows.reverse().map((r) => ({ reportId: r.report_id, at: r.at, metrics: r.metrics }));
    },
    async cloudMetrics(thing, o = {}) {
      const { rows } = await pool.query('SELECT at, metrics FROM cloud_metrics WHERE thing = $1 AND at >= $2 AND at <= $3 ORDER BY at DESC LIMIT $4', [
        thing,
        o.since ?? 0,
        o.until ?? Number.MAX_SAFE_INTEGER,
        o.limit ?? null,
      ]);
      return rows.reverse().map((r) => ({ at: r.at, metrics: r.metrics }));
    },
    async violations(o = {}) {
      const where = [o.all ? 'TRUE' : 'ended_at IS NULL', o.thing === undefined ? 'TRUE' : 'thing = $1'].join(' AND ');
      const { rows } = await pool.query(`SELECT * FROM violations WHERE ${where} ORDER BY started_at DESC, id`, o.thing === undefined ? [] : [o.thing]);
      return rows.map(violationOf);
    },
    prune,
    async close() {
      if (closed) return;
      closed = true;
      if (timer) clearInterval(timer);
      while (queue.length || running) await new Promise((r) => setTimeout(r, 5));
      await pool.end();
    },
  };
}
