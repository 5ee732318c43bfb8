// The dashboard in a real browser (Debian's chromium, headless, driven by playwright-core): the local service with
// simulated devices running the built bundles, and what a person would check on each page. Screenshots of the
// pages go to test-output/dashboard/.
import test from 'ava';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { startService } from '../../service/service.ts';
import { startDashboard } from '../../service/http/server.ts';
import { FIXED_PROFILE } from '../../service/http/memory.ts';
import { launchChromium, echoServer, simDevice } from './helpers.ts';
import { until } from '../helpers/until.ts';

const SHOTS = join(import.meta.dirname, '..', '..', 'test-output', 'dashboard');
const THINGS = ['sim-device-1', 'sim-device-2', 'sim-device-3'];

/** How many pixels of the canvases in `selector` are close to the colour r, g, b and at least as opaque as
 * `alpha` (0..255): a drawn line has some. */
function pixelsOf(page: Page, selector: string, rgb: [number, number, number], alpha = 200): Promise<number> {
  return page.$$eval(
    selector + ' canvas',
    (canvases: any[], [r, g, b, a]: number[]) => {
      let n = 0;
      for (const c of canvases) {
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        for (let i = 0; i < d.length; i += 4) if (d[i + 3] >= a && Math.abs(d[i] - r) < 40 && Math.abs(d[i + 1] - g) < 40 && Math.abs(d[i + 2] - b) < 40) n++;
      }
      return n;
    },
    [...rgb, alpha],
  );
}

/** pixelsOf, waited for: the thing page redraws its charts (new canvases) at each of the thing's reports, and a
 * clearing report stored after the page's first data round shows at the next one. At most 15 s. */
async function drawn(page: Page, selector: string, rgb: [number, number, number], alpha?: number): Promise<number> {
  let n = 0;
  for (const deadline = Date.now() + 15_000; Date.now() < deadline; await page.waitForTimeout(250)) {
    n = await pixelsOf(page, selector, rgb, alpha);
    if (n > 20) break;
  }
  return n;
}

test('fleet, thing, violations and profiles pages over the live service, in Chromium', async (t) => {
  mkdirSync(SHOTS, { recursive: true });
  const svc = await startService({ minPeriod: 0.8 });
  const dash = await startDashboard(svc);
  const echo = await echoServer();
  const devices = THINGS.map((thing) => simDevice(thing, svc.port, echo.port, 1));
  const problems: string[] = [];
  let chromium: Awaited<ReturnType<typeof launchChromium>> | undefined;
  try {
    chromium = await launchChromium();
    const accepted = new Map<string, number>();
    svc.on('verdict', (v) => v.verdict === 'ACCEPTED' && accepted.set(v.thing, (accepted.get(v.thing) ?? 0) + 1));
    await until(() => THINGS.every((n) => (accepted.get(n) ?? 0) >= 3), 30_000, () => JSON.stringify([...accepted]));

    const page = await chromium.context.newPage();
    page.on('console', (m) => m.type() === 'error' && problems.push(`console: ${m.text()}`));
    page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
    page.on('requestfailed', (r) => !r.url().endsWith('/api/events') && problems.push(`request failed: ${r.url()}`));

    // Fleet: every simulated thing, its last verdict, and live
    await page.goto(dash.url);
    for (const thing of THINGS) {
      const row = page.locator(`#fleet tbody tr[data-thing="${thing}"]`);
      await row.waitFor();
      t.regex(await row.innerText(), /accepted/, thing);
    }
    await page.locator('#live', { hasText: 'live' }).waitFor();
    t.regex(await page.locator('.tools').innerText(), /3 things, 0 violating/);

    // a device breaks the rule: its row says so without a reload, and again when it clears
    const row2 = page.locator('#fleet tbody tr[data-thing="sim-device-2"]');
    devices[1].connections(7);
    await page.locator('#fleet tbody tr[data-thing="sim-device-2"] td', { hasText: 'violating' }).waitFor({ timeout: 20_000 });
    await page.screenshot({ path: join(SHOTS, 'fleet.png'), fullPage: true });
    devices[1].connections(1);
    await row2.locator('td', { hasText: /^ok$/ }).waitFor({ timeout: 20_000 });

    // Thing: charts with data points, drawn; the latest report decoded
    await page.locator('a', { hasText: 'sim-device-2' }).first().click();
    const conns = page.locator('.chart[data-metric="aws:num-established-tcp-connections"]');
    await conns.locator('canvas').first().waitFor();
    t.true(Number(await conns.getAttribute('data-points')) >= 3, 'points in the connections chart');
    for (const metric of ['aws:all-bytes-in aws:all-bytes-out', 'aws:all-packets-in aws:all-packets-out', 'aws:num-listening-tcp-ports aws:num-listening-udp-ports']) {
      t.true(Number(await page.locator(`.chart[data-metric="${metric}"]`).getAttribute('data-points')) >= 3, metric);
    }
    t.true((await drawn(page, '.chart[data-metric="aws:num-established-tcp-connections"]', [0, 115, 187])) > 20, 'a line drawn in the connections chart');
    // the cleared violation: in the chart's data (the page's last load), then shaded on the time axis
    await page.locator('.chart[data-metric="aws:num-established-tcp-connections"]:not([data-bands="0"])').waitFor({ timeout: 15_000 });
    t.true((await drawn(page, '.chart[data-metric="aws:num-established-tcp-connections"]', [209, 50, 18], 20)) > 20, 'the cleared violation shaded on the time axis');
    const remotes = await page.locator('#connections tbody tr').allInnerTexts();
    t.true(remotes.length >= 1 && remotes.some((r) => r.includes(`127.0.0.1:${echo.port}`)), remotes.join('\n'));
    t.regex(await page.locator('main').innerText(), /listening TCP: \d+; UDP: \d+/);
    await page.screenshot({ path: join(SHOTS, 'thing.png'), fullPage: true });

    // Violations: appears live when a device breaks the rule, leaves the active list when it clears
    await page.locator('header nav a', { hasText: 'Violations' }).click();
    await page.locator('#active', { hasText: 'no active violation' }).waitFor();
    t.is(await page.locator('#past tbody tr[data-thing="sim-device-2"]').count(), 1, 'the cleared violation is past');
    devices[2].connections(7);
    const active = page.locator('#active tbody tr[data-thing="sim-device-3"]');
    await active.waitFor({ timeout: 20_000 });
    const cells = await active.locator('td').allInnerTexts();
    t.deepEqual(cells.slice(0, 4), ['sim-device-3', FIXED_PROFILE, 'too-many-connections', 'aws:num-established-tcp-connections']);
    t.true(Number(cells[4]) > 5, `the value that raised it: ${cells[4]}`);
    await page.screenshot({ path: join(SHOTS, 'violations.png'), fullPage: true });
    devices[2].connections(1);
    await active.waitFor({ state: 'detached', timeout: 20_000 });
    await page.locator('#past tbody tr[data-thing="sim-device-3"]').waitFor();

    // Profiles: the loaded rule and its warning
    await page.locator('header nav a', { hasText: 'Profiles' }).click();
    await page.locator('.profile h2', { hasText: FIXED_PROFILE }).waitFor();
    t.regex(await page.locator('main').innerText(), /greater-than 5/);
    await page.screenshot({ path: join(SHOTS, 'profiles.png'), fullPage: true });

    t.deepEqual(problems, []);
  } finally {
    for (const d of devices) d.stop();
    await chromium?.close();
    await dash.close();
    await echo.close();
    await svc.close();
  }
});
