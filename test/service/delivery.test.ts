// Nothing lost: a fleet's burst, and a broker that crashes. Devices are npm mqtt clients reporting at QoS 1 with
// persistent sessions; a report counts as acknowledged when the broker sent its PUBACK, and as answered when the
// device received the service's answer for its id. Figures are logged (t.log) for the notes.
import test, { type ExecutionContext } from 'ava';
import mqtt, { type MqttClient, type IClientOptions } from 'mqtt';
import * as cborg from 'cborg';
import { startService } from '../../service/service.ts';
import { shortDoc, encode } from './helpers.ts';
import { makeFleetPki, startFleetMosquitto, type FleetPki } from './fleet.ts';
import { freePort } from '../helpers/net.ts';
import { until } from '../helpers/until.ts';

const THINGS = 100;
const EACH = 100;
const names = Array.from({ length: THINGS }, (_, i) => `flood-${i}`);
let pki: Promise<FleetPki> | undefined;
const fleetPki = () => (pki ??= makeFleetPki(names));

interface Fleet {
  clients: MqttClient[];
  sent: number;
  /** Report key -> when its PUBACK came (epoch ms). */
  acknowledged: Map<string, number>;
  answered: Set<string>;
  figures(): string;
}

/** Connects one device per name (client id = name, persistent session), each subscribed to its answers. */
async function fleet(t: ExecutionContext, url: string, as: (name: string) => IClientOptions, things: string[], reconnectPeriod = 0): Promise<Fleet> {
  const f: Fleet = {
    clients: [],
    sent: 0,
    acknowledged: new Map(),
    answered: new Set(),
    figures: () => `sent ${f.sent}, acknowledged ${f.acknowledged.size}, answered ${f.answered.size}, lost ${[...f.acknowledged.keys()].filter((k) => !f.answered.has(k)).length}`,
  };
  const connect = async (name: string) => {
    const c = await mqtt.connectAsync(url, { clientId: name, clean: false, reconnectPeriod, connectTimeout: 30_000, ...as(name) }, false);
    c.on('error', () => {});
    c.on('message', (_topic, payload) => f.answered.add(`${name} ${cborg.decode(payload).reportId}`));
    const base = `$aws/things/${name}/defender/metrics/cbor`;
    await c.subscribeAsync([`${base}/accepted`, `${base}/rejected`], { qos: 1 });
    // as our agent does: subscribed again on every connect (a restored session may lack the subscription)
    c.on('connect', () => c.subscribe({ [`${base}/accepted`]: { qos: 1 }, [`${base}/rejected`]: { qos: 1 }, resubscribe: true } as any));
    return c;
  };
  t.teardown(() => Promise.all(f.clients.map((c) => c.endAsync(true))));
  // ten at a time: a hundred TLS handshakes at once on a busy machine outlast a connect timeout
  for (let i = 0; i < things.length; i += 10) f.clients.push(...(await Promise.all(things.slice(i, i + 10).map(connect))));
  return f;
}

/** Publishes report `id` of device i; counts it acknowledged on its PUBACK. */
function report(f: Fleet, i: number, id: number): Promise<void> {
  f.sent++;
  const name = names[i];
  return f.clients[i].publishAsync(`$aws/things/${name}/defender/metrics/cbor`, encode(shortDoc(id), 'cbor'), { qos: 1 }).then(
    () => void f.acknowledged.set(`${name} ${id}`, Date.now()),
    () => {},
  );
}

async function flood(t: ExecutionContext, url: string, as: (name: string) => IClientOptions) {
  const f = await fleet(t, url, as, names);
  await Promise.all(f.clients.map((_, i) => Promise.all(Array.from({ length: EACH }, (_, k) => report(f, i, k + 1)))));
  await until(() => f.answered.size >= f.acknowledged.size, 90_000, f.figures).catch(() => {});
  t.log(f.figures());
  t.is(f.acknowledged.size, THINGS * EACH);
  t.is(f.answered.size, THINGS * EACH, f.figures());
}

test('10,000 reports from 100 things as fast as they go, on aedes: all 10,000 answered', async (t) => {
  const svc = await startService({ port: 0, minPeriod: 0, access: 'thing' });
  t.teardown(() => svc.close());
  await flood(t, svc.url, () => ({}));
});

test('10,000 reports from 100 things as fast as they go, on mosquitto (shipped configuration): all 10,000 answered', async (t) => {
  const p = await fleetPki();
  const m = await startFleetMosquitto(p);
  t.teardown(() => m.stop());
  const svc = await startService({ broker: m.url, brokerTls: p.client('defender-service'), minPeriod: 0 });
  t.teardown(() => svc.close());
  await flood(t, m.url, (name) => p.tls(name));
});

const KILLS = 20;
/** mosquitto 2.0 acknowledges a QoS 1 publish before it is on disk, and saves every second (the shipped
 * autosave_interval): a report acknowledged in the last moment before a SIGKILL can die with the broker. */
const UNSAVED_MS = 1500;

// serial: on its own, not beside the floods of this file
test.serial(`mosquitto killed with SIGKILL ${KILLS} times while 10 things report every 100 ms: every acknowledged report reaches the service and is answered`, async (t) => {
  const p = await fleetPki();
  const port = await freePort();
  let m = await startFleetMosquitto(p, { port });
  const dataDir = m.dataDir;
  t.teardown(() => m.stop());
  // every report the service judged, a redelivery included (its log line; a redelivery is not a 'verdict' event)
  const judged = new Set<string>();
  const svc = await startService({
    broker: m.url,
    brokerTls: p.client('defender-service'),
    minPeriod: 0,
    log: (line) => {
      const j = /^\[(\S+)\] report (\d+) /.exec(line);
      if (j) judged.add(`${j[1]} ${j[2]}`);
    },
  });
  t.teardown(() => svc.close());
  const f = await fleet(t, m.url, (name) => p.tls(name), names.slice(0, 10), 200);
  const ids = names.slice(0, 10).map(() => 0);
  const timer = setInterval(() => f.clients.forEach((c, i) => c.connected && void report(f, i, ++ids[i])), 100);
  t.teardown(() => clearInterval(timer));
  const kills: number[] = [];
  // the broker saves once a second: the first crash comes after it has saved the sessions just made
  await new Promise((r) => setTimeout(r, 2500));
  for (let k = 0; k < KILLS; k++) {
    await new Promise((r) => setTimeout(r, 1500));
    kills.push(Date.now());
    await m.kill();
    await new Promise((r) => setTimeout(r, 300));
    m = await startFleetMosquitto(p, { port, dataDir });
  }
  await new Promise((r) => setTimeout(r, 1500));
  clearInterval(timer);
  const acked = [...f.acknowledged.keys()];
  // (a PUBACK read by this process just after the kill, our event loop being busy, came from the dead broker too:
  // the new one listens 300 ms later at the earliest)
  const unsaved = (k: string) => kills.some((at) => at - f.acknowledged.get(k)! < UNSAVED_MS && f.acknowledged.get(k)! - at < 300);
  const due = acked.filter((k) => !unsaved(k));
  await until(() => due.every((k) => judged.has(k) && f.answered.has(k)), 30_000).catch(() => {});
  const lost = acked.filter((k) => !judged.has(k));
  t.log(`${f.figures()}; never reached the service ${lost.length}, of which acknowledged < ${UNSAVED_MS} ms before a kill ${lost.filter(unsaved).length}`);
  t.true(acked.length > 1000);
  t.deepEqual(
    due.filter((k) => !judged.has(k)),
    [],
    'every report acknowledged with time for the broker to save it reached the service',
  );
  t.deepEqual(
    due.filter((k) => !f.answered.has(k)),
    [],
    'and its answer reached the device',
  );
});
