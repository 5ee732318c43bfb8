// The dashboard's JSON API over the real service: what a script sees (docs/dashboard.md), the token beyond
// loopback, and the in-memory adapter's bounds.
import test from 'ava';
import { startService } from '../../service/service.ts';
import { startDashboard, isLoopback } from '../../service/http/server.ts';
import { MemoryFleet } from '../../service/http/memory.ts';
import { reportMetrics } from '../../service/http/report.ts';
import type { VerdictEvent } from '../../service/service.ts';
import { device, longDoc, shortDoc } from '../service/helpers.ts';

const get = async (url: string, init?: RequestInit): Promise<{ status: number; headers: Headers; body: any }> => {
  const r = await fetch(url, { redirect: 'manual', ...init });
  return { status: r.status, headers: r.headers, body: r.headers.get('content-type')?.includes('json') ? await r.json() : await r.text() };
};

test('API: things, series, latest decoded, rejected with error codes, over reports from a device', async (t) => {
  const svc = await startService({ minPeriod: 60 });
  const dash = await startDashboard(svc);
  try {
    const dev = await device(svc.url, 'api-thing', 'json');
    t.is((await dev.send(longDoc(1000))).status, 'accepted');
    t.is((await dev.send(longDoc(1001))).status, 'rejected'); // throttled: a second report within minPeriod
    t.is((await dev.send(Buffer.from('{not json'), true)).status, 'rejected');
    await dev.close();

    const things = (await get(dash.url + 'api/things')).body;
    t.like(things, [{ thing: 'api-thing', lastVerdict: 'REJECTED', lastErrorCode: 'Malformed', reportsLastHour: 3, activeViolations: 0, quiet: false }]);

    const series = (await get(dash.url + 'api/things/api-thing/series?metric=aws:num-established-tcp-connections,aws:all-bytes-in')).body;
    t.deepEqual(Object.keys(series.series), ['aws:num-established-tcp-connections', 'aws:all-bytes-in']);
    t.deepEqual(series.series['aws:num-established-tcp-connections'].map((p: number[]) => p[1]), [2]);
    t.deepEqual(series.series['aws:all-bytes-in'].map((p: number[]) => p[1]), [29358693495]);
    const empty = (await get(dash.url + `api/things/api-thing/series?from=0&to=1000`)).body;
    t.true(Object.values(empty.series).every((s: any) => s.length === 0), 'nothing in a window before the reports');

    const latest = await get(dash.url + 'api/things/api-thing/latest');
    t.like(latest.body, { verdict: 'REJECTED', errorCode: 'Malformed', format: 'json' });
    const rejected = (await get(dash.url + 'api/things/api-thing/rejected')).body;
    t.deepEqual(
      rejected.map((r: any) => [r.errorCode, r.reportId]),
      [
        ['Malformed', undefined],
        ['Throttled', 1001],
      ],
    );
    t.regex(rejected[1].errorMessage, /throttled/);

    const info = (await get(dash.url + 'api/things/api-thing')).body;
    t.true(info.metrics.includes('MyMetricOfType_Number'), 'a custom number metric is charted');
    t.is((await get(dash.url + 'api/things/nobody/latest')).status, 404);
    t.is((await get(dash.url + 'api/things/nobody')).status, 404);
    t.is((await get(dash.url + 'api/nothing')).status, 404);
    t.like((await get(dash.url + 'api/profiles')).body, [{ name: 'in-memory-fixed-rule' }]);
    t.deepEqual((await get(dash.url + 'api/violations?active=true')).body, []);
  } finally {
    await dash.close();
    await svc.close();
  }
});

test('API: the latest report decoded, the same in long and short tags', async (t) => {
  const svc = await startService({ minPeriod: 0 });
  const dash = await startDashboard(svc);
  try {
    const views = [];
    for (const [thing, doc] of [
      ['long', longDoc(1)],
      ['short', shortDoc(1)],
    ] as const) {
      const dev = await device(svc.url, thing, 'cbor');
      t.is((await dev.send(doc)).status, 'accepted');
      await dev.close();
      views.push((await get(dash.url + `api/things/${thing}/latest`)).body.report);
    }
    t.deepEqual(views[0].connections, [
      { remote: '192.168.0.1:8000', localPort: 80, localInterface: 'eth0' },
      { remote: '192.168.0.1:8000', localPort: 80, localInterface: 'eth0' },
    ]);
    t.deepEqual(views[0].listeningTcp, [24800, 22, 53]);
    t.deepEqual(views[0].listeningUdp, [5353, 67]);
    t.deepEqual(views[0].custom, views[1].custom);
    t.deepEqual(views[0].custom.MyMetricOfType_IpList, ['172.0.0.0', '172.0.0.10']);
    t.deepEqual(Object.keys(reportMetrics(longDoc(1))), Object.keys(reportMetrics(shortDoc(1))));
  } finally {
    await dash.close();
    await svc.close();
  }
});

test('token: required beyond loopback; with one, requests need it (header or the cookie the printed url sets)', async (t) => {
  await t.throwsAsync(startDashboard(undefined, { host: '0.0.0.0', data: new MemoryFleet() }), { message: /only with a token/ });
  t.true(isLoopback('127.0.0.1') && isLoopback('::1') && isLoopback('localhost'));
  t.false(isLoopback('0.0.0.0') || isLoopback('192.168.1.2') || isLoopback('::'));

  const dash = await startDashboard(undefined, { data: new MemoryFleet(), token: 's3cret' });
  try {
    const base = dash.url.split('?')[0];
    t.is(dash.url, base + '?token=s3cret');
    t.is((await get(base + 'api/things')).status, 401);
    t.is((await get(base + 'api/things', { headers: { authorization: 'Bearer wrong' } })).status, 401);
    t.is((await get(base + 'api/things', { headers: { authorization: 'Bearer s3cret' } })).status, 200);
    t.is((await get(base + '?token=wrong')).status, 401);
    const login = await get(dash.url);
    t.is(login.status, 302);
    const cookie = login.headers.get('set-cookie')!.split(';')[0];
    t.regex(login.headers.get('set-cookie')!, /HttpOnly/);
    t.is((await get(base + 'api/things', { headers: { cookie } })).status, 200);
  } finally {
    await dash.close();
  }
});

const verdict = (thing: string, at: number, connections: number): VerdictEvent => ({
  thing,
  at,
  format: 'json',
  verdict: 'ACCEPTED',
  reportId: at,
  doc: { hed: { rid: at, v: '1.0' }, met: { tc: { ec: { cs: [], t: connections } } } },
});

test('memory adapter: bounded in things and points; the fixed rule raises on a violating report and clears on a good one', (t) => {
  const m = new MemoryFleet(undefined, { maxThings: 2, points: 3, maxConnections: 5, now: () => 10_000 });
  const events: string[] = [];
  m.subscribe((e) => e.type === 'violation' && events.push(`${e.state} ${e.violation.thing} ${e.violation.value}`));
  for (let i = 1; i <= 5; i++) m.add(verdict('a', i * 1000, i === 3 ? 9 : 1));
  t.deepEqual(
    m.series('a', 'aws:num-established-tcp-connections', 0, 1e9).map((p) => p[1]),
    [9, 1, 1],
  );
  t.deepEqual(events, ['raised a 9', 'cleared a 9']);
  t.like(m.violations({ active: false, limit: 10 }), [{ thing: 'a', startedAt: 3000, endedAt: 4000 }]);
  m.add(verdict('b', 6000, 1));
  m.add(verdict('a', 7000, 1)); // a reported last: b is the one quiet longest
  m.add(verdict('c', 8000, 1));
  t.deepEqual(m.things().map((x) => x.thing).sort(), ['a', 'c']);
  t.deepEqual(m.things('b'), []);
  m.add(verdict('a', 9000, 1)); // its last 3 reports: 5, 7 and 9 s
  t.is(m.things('a')[0].period, 2);
});
