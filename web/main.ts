// The fleet dashboard: four views on one page, chosen by the address's hash (#/, #/thing/NAME, #/violations,
// #/profiles), fed by the JSON API under /api and kept current by its server-sent events (/api/events).
// Plain DOM: four tables and a few charts (uPlot) do not need a framework. The fleet table renders one page of
// rows at a time, so that 10,000 things sort, filter and update live without a long task.
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import './style.css';
import { DEVICE_METRICS, isQuiet, type FleetEvent, type Profile, type RejectedReport, type ThingSummary, type Violation } from '../service/http/data.ts';

type Row = ThingSummary & { quiet?: boolean };
type Child = Node | string | number | null | undefined | false;

const app = document.getElementById('app')!;
const PAGE = 100;

/** An element with attributes (on* are listeners) and children. */
function h(tag: string, attrs: Record<string, unknown> | null = null, ...children: Child[]): HTMLElement {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v as EventListener);
    else el.setAttribute(k, String(v));
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) el.append(c instanceof Node ? c : String(c));
  return el;
}

async function api<T>(path: string): Promise<T> {
  const r = await fetch('/api/' + path);
  if (!r.ok) throw new Error(`${path}: ${r.status} ${(await r.json().catch(() => ({}))).error ?? ''}`);
  return r.json();
}

const ago = (t: number, now = Date.now()) => {
  const s = Math.max(0, Math.round((now - t) / 1000));
  return s < 60 ? `${s} s ago` : s < 3600 ? `${Math.floor(s / 60)} min ago` : s < 86400 ? `${Math.floor(s / 3600)} h ago` : `${Math.floor(s / 86400)} d ago`;
};
// one formatter: toLocaleString() builds a new one per call, which costs a long task over a page of rows
const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'short', timeStyle: 'medium' });
const time = (t: number) => dateTime.format(t);
const thingLink = (thing: string) => h('a', { href: '#/thing/' + encodeURIComponent(thing) }, thing);
const fmtValue = (v: unknown) => (Array.isArray(v) ? v.join(', ') : String(v));

// --- the live feed ---------------------------------------------------------------------------------------------

type Listener = (e: FleetEvent) => void;
const listeners = new Set<Listener>();
const reconnected = new Set<() => void>();
function connect(): void {
  const live = document.getElementById('live')!;
  const es = new EventSource('/api/events');
  let wasDown = false;
  es.onopen = () => {
    live.textContent = 'live';
    live.classList.remove('off');
    if (wasDown) for (const f of reconnected) f(); // events were missed while down: reload
    wasDown = false;
  };
  es.onerror = () => {
    live.textContent = 'reconnecting';
    live.classList.add('off');
    wasDown = true;
  };
  for (const type of ['report', 'violation']) {
    es.addEventListener(type, (m) => {
      const e = JSON.parse((m as MessageEvent).data) as FleetEvent;
      for (const l of listeners) l(e);
    });
  }
}

/** Runs f at most once per `ms` (and in an animation frame), however often it is asked. */
function throttled(f: () => void, ms = 0): () => void {
  let queued = false;
  return () => {
    if (queued) return;
    queued = true;
    setTimeout(() =>
      requestAnimationFrame(() => {
        queued = false;
        f();
      }),
    ms);
  };
}

// --- views -----------------------------------------------------------------------------------------------------

/** What a view leaves running (listeners, timers, charts), stopped when another view replaces it. */
let teardown: (() => void)[] = [];
function onEvent(l: Listener): void {
  listeners.add(l);
  teardown.push(() => listeners.delete(l));
}
function onReconnect(f: () => void): void {
  reconnected.add(f);
  teardown.push(() => reconnected.delete(f));
}
function every(ms: number, f: () => void): void {
  const t = setInterval(f, ms);
  teardown.push(() => clearInterval(t));
}

const COLUMNS: { key: keyof Row | 'status'; label: string; num?: boolean }[] = [
  { key: 'thing', label: 'Thing' },
  { key: 'lastAt', label: 'Last report' },
  { key: 'lastVerdict', label: 'Last verdict' },
  { key: 'reportsLastHour', label: 'Reports / hour', num: true },
  { key: 'period', label: 'Period (s)', num: true },
  { key: 'activeViolations', label: 'Active violations', num: true },
  { key: 'status', label: 'Status' },
];

async function fleetView(): Promise<void> {
  const rows = new Map<string, Row>();
  let sortKey: (typeof COLUMNS)[number]['key'] = 'thing';
  let sortDir = 1;
  let filter = '';
  let onlyProblems = false;
  let page = 0;
  let order: Row[] = [];
  let dirtyOrder = true;

  const status = (r: Row, now: number) => (r.activeViolations > 0 ? 'violating' : isQuiet(r.lastAt, r.period, now) ? 'quiet' : 'ok');
  const key = (r: Row, now: number): string | number => (sortKey === 'status' ? status(r, now) : (r[sortKey] as string | number | undefined) ?? -1);

  const summary = h('span');
  const search = h('input', { type: 'search', placeholder: 'filter by thing name', 'aria-label': 'filter' }) as HTMLInputElement;
  const problems = h('input', { type: 'checkbox' }) as HTMLInputElement;
  const head = h('tr');
  const body = h('tbody');
  const pager = h('div', { class: 'pager' });
  const ths = COLUMNS.map((c) => {
    const th = h('th', { class: 'sort' + (c.num ? ' num' : ''), scope: 'col' }, c.label);
    th.addEventListener('click', () => {
      sortDir = sortKey === c.key ? -sortDir : 1;
      sortKey = c.key;
      dirtyOrder = true;
      render();
    });
    head.append(th);
    return th;
  });
  search.addEventListener('input', () => {
    filter = search.value.trim().toLowerCase();
    page = 0;
    dirtyOrder = true;
    render();
  });
  problems.addEventListener('change', () => {
    onlyProblems = problems.checked;
    page = 0;
    dirtyOrder = true;
    render();
  });
  app.replaceChildren(
    h('h1', null, 'Fleet'),
    h('div', { class: 'tools' }, search, h('label', null, problems, ' quiet or violating only'), summary),
    h('table', { id: 'fleet' }, h('thead', null, head), body),
    pager,
  );

  function render(): void {
    const now = Date.now();
    if (dirtyOrder) {
      order = [...rows.values()].filter((r) => (!filter || r.thing.toLowerCase().includes(filter)) && (!onlyProblems || status(r, now) !== 'ok'));
      order.sort((a, b) => {
        const x = key(a, now);
        const y = key(b, now);
        return (x < y ? -1 : x > y ? 1 : a.thing < b.thing ? -1 : 1) * sortDir;
      });
      dirtyOrder = false;
    }
    ths.forEach((th, i) => (COLUMNS[i].key === sortKey ? th.setAttribute('aria-sort', sortDir > 0 ? 'ascending' : 'descending') : th.removeAttribute('aria-sort')));
    const pages = Math.max(1, Math.ceil(order.length / PAGE));
    page = Math.min(page, pages - 1);
    body.replaceChildren(
      ...order.slice(page * PAGE, page * PAGE + PAGE).map((r) => {
        const s = status(r, now);
        return h(
          'tr',
          { 'data-thing': r.thing },
          h('td', null, thingLink(r.thing)),
          h('td', { title: time(r.lastAt) }, ago(r.lastAt, now)),
          h('td', { class: r.lastVerdict === 'ACCEPTED' ? 'ok' : 'bad' }, r.lastVerdict === 'ACCEPTED' ? 'accepted' : `rejected ${r.lastErrorCode ?? ''}`),
          h('td', { class: 'num' }, r.reportsLastHour),
          h('td', { class: 'num' }, r.period === undefined ? '' : r.period.toFixed(r.period < 10 ? 1 : 0)),
          h('td', { class: 'num' + (r.activeViolations ? ' bad' : '') }, r.activeViolations),
          h('td', { class: s === 'ok' ? 'ok' : s === 'quiet' ? 'quiet' : 'bad' }, s),
        );
      }),
    );
    let quiet = 0;
    let violating = 0;
    for (const r of rows.values()) {
      if (r.activeViolations > 0) violating++;
      else if (isQuiet(r.lastAt, r.period, now)) quiet++;
    }
    summary.textContent = `${rows.size} things, ${violating} violating, ${quiet} quiet`;
    pager.replaceChildren(
      h('button', { disabled: page === 0, onclick: () => (page--, render()) }, 'previous'),
      `${order.length ? page * PAGE + 1 : 0}–${Math.min(order.length, (page + 1) * PAGE)} of ${order.length}`,
      h('button', { disabled: page >= pages - 1, onclick: () => (page++, render()) }, 'next'),
    );
  }
  // live reports re-sort and redraw the table at most twice a second: 333 reports a second stay cheap
  const later = throttled(() => {
    dirtyOrder = true;
    render();
  }, 500);

  async function load(): Promise<void> {
    const list = await api<Row[]>('things');
    rows.clear();
    for (const r of list) rows.set(r.thing, r);
    dirtyOrder = true;
    render();
  }
  onEvent((e) => {
    if (e.type === 'report') {
      const r = rows.get(e.thing) ?? { thing: e.thing, lastAt: 0, lastVerdict: e.verdict, reportsLastHour: 0, activeViolations: 0 };
      rows.set(e.thing, { ...r, lastAt: e.at, lastVerdict: e.verdict, lastErrorCode: e.errorCode, reportsLastHour: r.reportsLastHour + 1 });
    } else {
      const r = rows.get(e.violation.thing);
      if (r) r.activeViolations = Math.max(0, r.activeViolations + (e.state === 'raised' ? 1 : -1));
    }
    later();
  });
  onReconnect(() => void load());
  every(1000, render); // "12 s ago" and quiet things move on with the clock
  every(60_000, () => void load().catch(showError)); // reports per hour counts up live; the hour-old ones drop here
  await load();
  performance.mark('fleet-rendered');
}

/** One chart: a line per series, violations shaded on the same time axis. */
function chart(title: string, names: string[], points: Record<string, [number, number][]>, bands: [number, number][], from: number, to: number): HTMLElement {
  const times = [...new Set(names.flatMap((n) => (points[n] ?? []).map((p) => p[0])))].sort((a, b) => a - b);
  const col = (n: string) => {
    const m = new Map(points[n] ?? []);
    return times.map((t) => m.get(t) ?? null);
  };
  const box = h('div', { class: 'chart', 'data-metric': names.join(' '), 'data-points': times.length, 'data-bands': bands.length }, h('h3', null, title));
  if (!times.length) {
    box.append(h('div', { class: 'empty' }, 'no data in this window'));
    return box;
  }
  const colors = ['#0073bb', '#ec7211', '#1d8102', '#d13212'];
  const opts: uPlot.Options = {
    width: 520,
    height: 180,
    scales: { x: { time: true, min: from / 1000, max: to / 1000 } },
    legend: { show: names.length > 1, live: false },
    series: [{}, ...names.map((n, i) => ({ label: n.replace(/^aws:/, ''), stroke: colors[i % colors.length], width: 1.5, points: { show: true, size: 4 } }))],
    hooks: {
      drawClear: [
        (u: uPlot) => {
          const ctx = u.ctx;
          ctx.save();
          ctx.fillStyle = 'rgba(209, 50, 18, 0.15)';
          for (const [s, e] of bands) {
            const x0 = u.valToPos(s / 1000, 'x', true);
            const x1 = u.valToPos(e / 1000, 'x', true);
            // at least 3 pixels: a violation that lasted one report on a day's axis still shows
            ctx.fillRect(x0, u.bbox.top, Math.max(3, x1 - x0), u.bbox.height);
          }
          ctx.restore();
        },
      ],
    },
  };
  const plot = new uPlot(opts, [times.map((t) => t / 1000), ...names.map(col)] as uPlot.AlignedData, box);
  teardown.push(() => plot.destroy());
  return box;
}

const WINDOWS: Record<string, number> = { '5 minutes': 300_000, hour: 3600_000, day: 86400_000, week: 7 * 86400_000 };
/** The smallest window that holds the thing's last 30 reports: a device reporting every 5 s shows a line, not a dot. */
const windowFor = (period: number | undefined) => Object.keys(WINDOWS).find((w) => WINDOWS[w] >= (period ?? 300) * 1000 * 30) ?? 'week';
const CHARTS: [string, string[]][] = [
  ['Established TCP connections', ['aws:num-established-tcp-connections']],
  ['Bytes in and out', ['aws:all-bytes-in', 'aws:all-bytes-out']],
  ['Packets in and out', ['aws:all-packets-in', 'aws:all-packets-out']],
  ['Listening ports (TCP, UDP)', ['aws:num-listening-tcp-ports', 'aws:num-listening-udp-ports']],
];

interface LatestView {
  at: number;
  reportId?: number;
  format: string;
  verdict: string;
  errorCode?: string;
  report: {
    connections: { remote: string; localPort?: number; localInterface?: string }[];
    establishedTotal?: number;
    listeningTcp: number[];
    listeningUdp: number[];
    network?: Record<string, number | undefined>;
    custom: Record<string, unknown>;
  };
}

async function thingView(thing: string, windowName: string | undefined): Promise<void> {
  windowName ??= windowFor((await api<ThingSummary>(`things/${encodeURIComponent(thing)}`)).period);
  const span = WINDOWS[windowName] ?? WINDOWS.hour;
  const picker = h(
    'select',
    { 'aria-label': 'window', onchange: (e: Event) => (location.hash = `#/thing/${encodeURIComponent(thing)}/${(e.target as HTMLSelectElement).value}`) },
    ...Object.keys(WINDOWS).map((w) => h('option', { value: w, selected: w === windowName ? 'selected' : undefined }, `last ${w}`)),
  );
  const charts = h('div', { class: 'charts' });
  const latest = h('div');
  const rejected = h('div');
  const violations = h('div');
  app.replaceChildren(h('h1', null, thing), h('div', { class: 'tools' }, picker), charts, h('div', { class: 'grid2' }, latest, h('div', null, violations, rejected)));

  async function load(): Promise<void> {
    const to = Date.now();
    const from = to - span;
    const [info, series, last, rej, viol] = await Promise.all([
      api<{ metrics: string[] }>(`things/${encodeURIComponent(thing)}`),
      api<{ series: Record<string, [number, number][]> }>(`things/${encodeURIComponent(thing)}/series?from=${from}&to=${to}`),
      api<LatestView>(`things/${encodeURIComponent(thing)}/latest`),
      api<RejectedReport[]>(`things/${encodeURIComponent(thing)}/rejected?limit=20`),
      api<Violation[]>(`violations?thing=${encodeURIComponent(thing)}&limit=50`),
    ]);
    const bands = viol.filter((v) => (v.endedAt ?? to) >= from).map((v): [number, number] => [Math.max(v.startedAt, from), v.endedAt ?? to]);
    const custom = info.metrics.filter((m) => !(DEVICE_METRICS as readonly string[]).includes(m));
    for (const f of teardown.splice(0)) f(); // the previous charts (and listeners, added again below)
    subscribe();
    charts.replaceChildren(...[...CHARTS, ...custom.map((m): [string, string[]] => [m, [m]])].map(([title, names]) => chart(title, names, series.series, bands, from, to)));
    const r = last.report;
    latest.replaceChildren(
      h('h2', null, 'Latest report'),
      h('p', null, `report ${last.reportId ?? '(no id)'}, ${last.format.toUpperCase()}, ${time(last.at)}: `, h('span', { class: last.verdict === 'ACCEPTED' ? 'ok' : 'bad' }, last.verdict.toLowerCase(), last.errorCode ? ' ' + last.errorCode : '')),
      table('connections', ['Remote address', 'Local port', 'Interface'], r.connections.map((c) => [c.remote, c.localPort ?? '', c.localInterface ?? ''])),
      h('p', null, `established: ${r.establishedTotal ?? r.connections.length}; listening TCP: ${r.listeningTcp.join(', ') || 'none'}; UDP: ${r.listeningUdp.join(', ') || 'none'}`),
      ...(r.network ? [h('p', null, `bytes in ${r.network.bytesIn ?? '?'}, out ${r.network.bytesOut ?? '?'}; packets in ${r.network.packetsIn ?? '?'}, out ${r.network.packetsOut ?? '?'}`)] : []),
      ...Object.entries(r.custom).map(([k, v]) => h('p', null, `${k}: ${fmtValue(v)}`)),
    );
    rejected.replaceChildren(
      h('h2', null, 'Rejected reports'),
      rej.length
        ? table('rejected', ['When', 'Report', 'Error code', 'Message'], rej.map((x) => [time(x.at), x.reportId ?? '', h('span', { class: 'bad' }, x.errorCode), x.errorMessage]))
        : h('p', { class: 'empty' }, 'none'),
    );
    violations.replaceChildren(h('h2', null, 'Violations'), viol.length ? violationTable(viol, false) : h('p', { class: 'empty' }, 'none'));
  }
  const later = throttled(() => void load().catch(showError));
  function subscribe(): void {
    onEvent((e) => {
      if ((e.type === 'report' ? e.thing : e.violation.thing) === thing) later();
    });
    onReconnect(later);
  }
  await load();
}

/** A table of plain rows. */
function table(id: string | undefined, headers: string[], rows: Child[][]): HTMLElement {
  return h('table', { id }, h('thead', null, h('tr', null, ...headers.map((x) => h('th', { scope: 'col' }, x)))), h('tbody', null, ...rows.map((r) => h('tr', null, ...r.map((c) => h('td', null, c))))));
}

function violationTable(list: Violation[], withThing: boolean): HTMLElement {
  return h(
    'table',
    null,
    h('thead', null, h('tr', null, withThing && h('th', null, 'Thing'), h('th', null, 'Profile'), h('th', null, 'Behavior'), h('th', null, 'Metric'), h('th', null, 'Value'), h('th', null, 'Started'), h('th', null, 'Ended'))),
    h(
      'tbody',
      null,
      ...list.map((v) =>
        h('tr', { 'data-thing': v.thing, 'data-id': v.id }, withThing && h('td', null, thingLink(v.thing)), h('td', null, v.profile), h('td', null, v.behavior), h('td', null, v.metric), h('td', { class: 'bad' }, fmtValue(v.value)), h('td', null, time(v.startedAt)), h('td', null, v.endedAt ? time(v.endedAt) : 'active')),
      ),
    ),
  );
}

async function violationsView(): Promise<void> {
  const active = h('div', { id: 'active' });
  const past = h('div', { id: 'past' });
  app.replaceChildren(h('h1', null, 'Violations'), h('h2', null, 'Active'), active, h('h2', null, 'Past'), past);
  async function load(): Promise<void> {
    const [a, p] = await Promise.all([api<Violation[]>('violations?active=true&limit=500'), api<Violation[]>('violations?active=false&limit=200')]);
    active.replaceChildren(a.length ? violationTable(a, true) : h('p', { class: 'empty' }, 'no active violation'));
    past.replaceChildren(p.length ? violationTable(p, true) : h('p', { class: 'empty' }, 'none yet'));
  }
  const later = throttled(() => void load().catch(showError));
  onEvent((e) => e.type === 'violation' && later());
  onReconnect(later);
  await load();
}

async function profilesView(): Promise<void> {
  const list = await api<Profile[]>('profiles');
  app.replaceChildren(
    h('h1', null, 'Security profiles'),
    ...(list.length
      ? list.map((p) =>
          h(
            'section',
            { class: 'profile' },
            h('h2', null, p.name),
            h('p', null, 'applies to ', p.targets),
            ...p.warnings.map((w) => h('p', { class: 'warn' }, '⚠ ', w)),
            table(undefined, ['Behavior', 'Metric', 'Criteria'], p.behaviors.map((b) => [b.name, b.metric, b.criteria ?? 'retain the metric only'])),
          ),
        )
      : [h('p', { class: 'empty' }, 'no security profile loaded')]),
  );
}

function showError(err: unknown): void {
  console.warn(err);
  app.prepend(h('p', { class: 'bad' }, String((err as Error).message ?? err)));
}

async function route(): Promise<void> {
  for (const f of teardown.splice(0)) f();
  const parts = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  for (const a of document.querySelectorAll('header nav a')) a.classList.toggle('on', a.getAttribute('href') === '#/' + (parts[0] === 'thing' ? '' : parts[0]));
  try {
    if (parts[0] === 'thing' && parts[1]) await thingView(parts[1], parts[2]);
    else if (parts[0] === 'violations') await violationsView();
    else if (parts[0] === 'profiles') await profilesView();
    else await fleetView();
  } catch (err) {
    showError(err);
  }
}

window.addEventListener('hashchange', () => void route());
connect();
void route();
