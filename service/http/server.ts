// The dashboard's HTTP server (fastify): the JSON API under /api (docs/dashboard.md), live events as server-sent
// events on /api/events, and the page's static files from build/web (built by tools/build-web.mjs).
//
//   const dash = await startDashboard(svc, { port: 8080 });   // dash.url: http://127.0.0.1:8080/
//   await dash.close();
//
// Loopback by default. Any other address needs a token: requests then carry `Authorization: Bearer TOKEN`, or the
// cookie the page gets by opening the printed url once (/?token=TOKEN sets it, then redirects to /).
import Fastify, { type FastifyRequest } from 'fastify';
import fastifyStatic from '@fastify/static';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { timingSafeEqual, createHash } from 'node:crypto';
import { isIP, type AddressInfo } from 'node:net';
import { isQuiet, type FleetData, type FleetEvent } from './data.ts';
import { MemoryFleet, type MemoryOptions, type VerdictSource } from './memory.ts';
import { viewReport } from './report.ts';

export const WEB_ROOT = join(import.meta.dirname, '..', '..', 'build', 'web');
const COOKIE = 'defender_dashboard';
const HOUR = 3600_000;
const WEEK = 7 * 24 * HOUR;

export interface DashboardOptions {
  /** Address to listen on (default 127.0.0.1). Anything but loopback needs `token`. */
  host?: string;
  /** Port (default 0: a free one). */
  port?: number;
  /** Required from every request when set; required to listen beyond loopback. */
  token?: string;
  /** Where the data comes from (default: a MemoryFleet on the service's 'verdict' events). */
  data?: FleetData;
  /** Options of the default MemoryFleet. */
  memory?: MemoryOptions;
  /** The built page (default build/web). */
  webRoot?: string;
}

export interface Dashboard {
  /** http://HOST:PORT/ to open (with ?token=... when a token is set). */
  readonly url: string;
  readonly port: number;
  readonly data: FleetData;
  close(): Promise<void>;
}

export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1' || host === '0:0:0:0:0:0:0:1';
}

export async function startDashboard(service: VerdictSource | undefined, opts: DashboardOptions = {}): Promise<Dashboard> {
  const host = opts.host ?? '127.0.0.1';
  if (!isLoopback(host) && !opts.token) throw new Error(`the dashboard listens on ${host}, beyond loopback, only with a token`);
  if (!opts.data && !service) throw new Error('startDashboard needs a service or a data source');
  const memory = opts.data ? undefined : new MemoryFleet(service, opts.memory);
  const data: FleetData = opts.data ?? memory!;
  const webRoot = opts.webRoot ?? WEB_ROOT;
  const app = Fastify({ logger: false, forceCloseConnections: true });
  const streams = new Set<() => void>();

  if (opts.token) {
    const want = digest(opts.token);
    const ok = (req: FastifyRequest) => {
      const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
      const cookie = new RegExp(`(?:^|;\\s*)${COOKIE}=([^;]+)`).exec(req.headers.cookie ?? '')?.[1];
      const given = bearer ?? (cookie && decodeURIComponent(cookie));
      return given !== undefined && timingSafeEqual(digest(given), want);
    };
    app.addHook('onRequest', async (req, reply) => {
      const q = (req.query as any)?.token;
      if (req.method === 'GET' && req.url.split('?')[0] === '/' && typeof q === 'string' && timingSafeEqual(digest(q), want)) {
        reply.header('set-cookie', `${COOKIE}=${encodeURIComponent(q)}; Path=/; HttpOnly; SameSite=Strict`);
        return reply.redirect('/');
      }
      if (!ok(req)) return reply.code(401).send({ error: 'a token is required: open the address the service printed' });
    });
  }

  const thingParam = (req: FastifyRequest) => (req.params as { thing: string }).thing;
  const int = (v: unknown, dflt: number, max = Infinity) => {
    const n = Number(v);
    return v === undefined || v === '' || !Number.isFinite(n) ? dflt : Math.min(Math.max(0, Math.floor(n)), max);
  };

  app.get('/api/things', async () => {
    const now = Date.now();
    return (await data.things()).map((t) => ({ ...t, quiet: isQuiet(t.lastAt, t.period, now) }));
  });

  app.get('/api/things/:thing', async (req, reply) => {
    const thing = thingParam(req);
    const [summary] = await data.things(thing);
    if (!summary) return reply.code(404).send({ error: `no report from ${thing}` });
    return { ...summary, quiet: isQuiet(summary.lastAt, summary.period, Date.now()), metrics: await data.metrics(thing) };
  });

  app.get('/api/things/:thing/series', async (req, reply) => {
    const q = req.query as Record<string, string | undefined>;
    const to = int(q.to, Date.now());
    const from = int(q.from, to - HOUR);
    if (to - from > 5 * WEEK) return reply.code(400).send({ error: 'a window of 5 weeks at most' });
    const names = q.metric ? q.metric.split(',') : await data.metrics(thingParam(req));
    const series: Record<string, unknown> = {};
    for (const m of names) series[m] = await data.series(thingParam(req), m, from, to);
    return { from, to, series };
  });

  app.get('/api/things/:thing/latest', async (req, reply) => {
    const r = await data.latest(thingParam(req));
    if (!r) return reply.code(404).send({ error: `no report from ${thingParam(req)}` });
    return { at: r.at, reportId: r.reportId, format: r.format, verdict: r.verdict, errorCode: r.errorCode, report: viewReport(r.doc) };
  });

  app.get('/api/things/:thing/rejected', async (req) => data.rejected(thingParam(req), int((req.query as any).limit, 50, 1000)));

  app.get('/api/violations', async (req) => {
    const q = req.query as Record<string, string | undefined>;
    const active = q.active === 'true' ? true : q.active === 'false' ? false : undefined;
    return data.violations({ active, thing: q.thing || undefined, limit: int(q.limit, 200, 10_000) });
  });

  app.get('/api/profiles', async () => data.profiles());

  app.get('/api/events', (req, reply) => {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
    res.write('retry: 2000\n\n');
    const send = (e: FleetEvent) => res.write(`event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`);
    const unsubscribe = data.subscribe(send);
    // a comment now and then, so that a proxy keeps the stream open and a gone client is noticed
    const ping = setInterval(() => res.write(': ping\n\n'), 15_000);
    const end = () => {
      clearInterval(ping);
      unsubscribe();
      streams.delete(end);
      res.end();
    };
    streams.add(end);
    req.raw.on('close', end);
  });

  app.get('/api/*', async (_req, reply) => reply.code(404).send({ error: 'no such endpoint: see docs/dashboard.md' }));

  if (existsSync(join(webRoot, 'index.html'))) {
    await app.register(fastifyStatic, { root: webRoot, index: 'index.html' });
  } else {
    app.get('/', async (_req, reply) => reply.code(503).type('text/plain').send(`the page is not built: run npm run build (${webRoot} is missing)`));
  }

  await app.listen({ host, port: opts.port ?? 0 });
  const port = (app.server.address() as AddressInfo).port;
  const shown = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${shown}:${port}/${opts.token ? `?token=${encodeURIComponent(opts.token)}` : ''}`,
    port,
    data,
    async close() {
      for (const end of [...streams]) end();
      await app.close();
      memory?.close();
    },
  };
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

