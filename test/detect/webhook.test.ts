// The HTTP webhook alert target against a real HTTP server: retried with exponential back-off on 5xx and on a
// refused connection, not retried on a 4xx, given up (and said so in the log) after its retries.
import test from 'ava';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { Alerts, type AlertMessage } from '../../service/detect/alerts.ts';
import { freePort } from '../helpers/net.ts';
import { echoServer, harness } from './helpers.ts';

interface Hit {
  at: number;
  body: any;
  headers: IncomingMessage['headers'];
}

async function server(t: any, answer: (n: number) => number): Promise<{ url: string; hits: Hit[] }> {
  const hits: Hit[] = [];
  const srv = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      hits.push({ at: Date.now(), body: JSON.parse(body), headers: req.headers });
      res.statusCode = answer(hits.length);
      res.end();
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => srv.close(() => r())));
  return { url: `http://127.0.0.1:${(srv.address() as any).port}/alerts`, hits };
}

const message: AlertMessage = {
  violationId: 'v-1',
  thingName: 'dev-1',
  securityProfileName: 'p',
  behavior: { name: 'b', metric: 'aws:all-bytes-out' },
  violationEventType: 'in-alarm',
  metricValue: { count: 5000 },
  violationEventTime: 1,
  violationStartTime: 1,
  reportId: 7,
};

test('a 503 is retried with doubling waits until the alert is taken', async (t) => {
  const { url, hits } = await server(t, (n) => (n < 3 ? 503 : 200));
  const logs: string[] = [];
  const a = new Alerts({ webhook: { url, minTimeout: 60, headers: { authorization: 'Bearer x' } }, log: false }, undefined, (l) => logs.push(l));
  await a.send(message);
  t.is(hits.length, 3);
  t.deepEqual(hits[2].body, message);
  t.is(hits[2].headers['content-type'], 'application/json');
  t.is(hits[2].headers.authorization, 'Bearer x');
  t.true(hits[1].at - hits[0].at >= 55, `first wait ${hits[1].at - hits[0].at} ms`);
  t.true(hits[2].at - hits[1].at >= 115, `second wait ${hits[2].at - hits[1].at} ms, doubled`);
  t.is(logs.filter((l) => /attempt \d failed \(HTTP 503\), retrying/.test(l)).length, 2);
  t.false(logs.some((l) => /not delivered/.test(l)));
});

test('a 400 is not retried; the log says the alert was not delivered', async (t) => {
  const { url, hits } = await server(t, () => 400);
  const logs: string[] = [];
  await new Alerts({ webhook: { url, minTimeout: 10 } }, undefined, (l) => logs.push(l)).send(message);
  t.is(hits.length, 1);
  t.true(logs.some((l) => l === `alert v-1 (in-alarm) to ${url} not delivered: HTTP 400`), logs.join('\n'));
});

test('nobody listening: retried, then given up after its retries', async (t) => {
  const url = `http://127.0.0.1:${await freePort()}/`;
  const logs: string[] = [];
  await new Alerts({ webhook: { url, retries: 2, minTimeout: 10 }, log: false }, undefined, (l) => logs.push(l)).send(message);
  t.is(logs.filter((l) => /retrying/.test(l)).length, 2);
  t.regex(logs.at(-1)!, /not delivered/);
});

test('over the service: the webhook gets the same violation event the MQTT topic does', async (t) => {
  const { url, hits } = await server(t, () => 200);
  const h = await harness([{ securityProfileName: 'hooked', behaviors: [{ name: 'no-conns', metric: 'aws:num-established-tcp-connections', criteria: { comparisonOperator: 'less-than', value: { count: 1 } } }] }], {
    alerts: { webhook: url },
  });
  t.teardown(() => h.close());
  const e = await echoServer();
  t.teardown(() => e.close());
  const dev = await h.device('hooked-dev');
  await new Promise<void>((r) => dev.net.connect({ host: '127.0.0.1', port: e.port }, () => r()));
  const [raised] = await dev.report();
  const deadline = Date.now() + 5000;
  while (!hits.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  t.deepEqual(hits[0].body, raised);
});
