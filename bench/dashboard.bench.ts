// The fleet page in Chromium (headless, playwright-core) with 10,000 things, against the same page with 100 things
// (the peer) in the same run: time to the table drawn, time to interactive (the end of the last long task, 50 ms or
// more, before one quiet second), and how long a sort and a filter take to reach the screen while live reports
// arrive at 333 a second (a fleet of 100,000 devices reporting every 5 minutes). Target: under 2 s to interactive.
// The data is the in-memory adapter, filled with synthetic verdicts; the page is the built one (npm run build).
import { startDashboard } from '../service/http/server.ts';
import { MemoryFleet } from '../service/http/memory.ts';
import type { VerdictEvent } from '../service/service.ts';
import { launchChromium } from '../test/http/helpers.ts';

const TARGET_MS = 2000;
const RUNS = 5;

function verdict(thing: string, at: number, i: number): VerdictEvent {
  const bad = i % 97 === 0;
  return {
    thing,
    at,
    format: 'cbor',
    reportId: at,
    verdict: bad ? 'REJECTED' : 'ACCEPTED',
    errorCode: bad ? 'Throttled' : undefined,
    errorMessage: bad ? 'Report throttled' : undefined,
    doc: { hed: { rid: at, v: '1.0' }, met: { tc: { ec: { cs: [], t: i % 211 === 0 ? 9 : 2 } }, ns: { bi: 100 + i, bo: 200 + i, pi: 2, po: 3 } } },
  };
}

function fleet(n: number): MemoryFleet {
  const m = new MemoryFleet(undefined, { maxThings: n });
  const now = Date.now();
  for (let r = 3; r >= 1; r--) for (let i = 0; i < n; i++) m.add(verdict(`thing-${String(i).padStart(5, '0')}`, now - r * 300_000 - (i % 300) * 1000, i));
  return m;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

const chromium = await launchChromium();
const rows: Record<string, string | number>[] = [];
try {
  // long tasks from the start of each page, for the time to interactive
  await chromium.context.addInitScript(`window.__long = [];
    new PerformanceObserver((l) => window.__long.push(...l.getEntries().map((e) => e.startTime + e.duration))).observe({ type: 'longtask' });`);
  for (const n of [100, 10_000]) {
    const data = fleet(n);
    const dash = await startDashboard(undefined, { data });
    const loads: number[] = [];
    const ttis: number[] = [];
    const sorts: number[] = [];
    const filters: number[] = [];
    let longDuringFeed = 0;
    try {
      const page = await chromium.context.newPage();
      await page.goto(dash.url); // warm: the script and the style come from the cache in the measured runs
      for (let run = 0; run < RUNS; run++) {
        await page.goto('about:blank');
        await page.goto(dash.url);
        await page.waitForFunction(`performance.getEntriesByName('fleet-rendered').length > 0`);
        await page.waitForTimeout(1200); // a quiet second after the table is drawn
        const [rendered, lastLong]: number[] = await page.evaluate(`[performance.getEntriesByName('fleet-rendered')[0].startTime, Math.max(0, ...window.__long)]`);
        loads.push(rendered);
        ttis.push(Math.max(rendered, lastLong));

        // live reports while a person sorts and filters
        let k = 0;
        const feed = setInterval(() => {
          for (let j = 0; j < 33; j++, k++) data.add(verdict(`thing-${String(k % n).padStart(5, '0')}`, Date.now(), k));
        }, 100);
        const before = await page.evaluate<number>(`window.__long.length`);
        // time from the click to the frame after it (rendering done)
        const frame = `new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)))`;
        sorts.push(await page.evaluate(`(async () => { const t = performance.now(); document.querySelectorAll('#fleet th')[1].click(); await ${frame}; return performance.now() - t; })()`));
        filters.push(
          await page.evaluate(
            `(async () => { const i = document.querySelector('.tools input[type=search]'); const t = performance.now(); i.value = 'thing-000'; i.dispatchEvent(new Event('input')); await ${frame}; return performance.now() - t; })()`,
          ),
        );
        await page.waitForTimeout(1000);
        clearInterval(feed);
        longDuringFeed = Math.max(longDuringFeed, (await page.evaluate<number>(`window.__long.length`)) - before);
      }
      await page.close();
    } finally {
      await dash.close();
    }
    const tti = median(ttis);
    rows.push({
      things: n,
      'table drawn ms': median(loads).toFixed(0),
      'interactive ms': tti.toFixed(0),
      'target ms': TARGET_MS,
      'interactive / target': (tti / TARGET_MS).toFixed(2),
      'sort ms': median(sorts).toFixed(1),
      'filter ms': median(filters).toFixed(1),
      'long tasks, 2 s of live feed': longDuringFeed,
    });
  }
} finally {
  await chromium.close();
}
console.table(rows);
const [peer, big] = rows;
console.log(`10,000 things: interactive in ${big['interactive ms']} ms (target ${TARGET_MS} ms: ${Number(big['interactive ms']) < TARGET_MS ? 'met' : 'MISSED'}); ${(Number(big['interactive ms']) / Number(peer['interactive ms'])).toFixed(2)}x the 100-thing page (${peer['interactive ms']} ms)`);
