// build/tinymqtt.js against brokers that misbehave or are left abruptly, over real TCP sockets: a scripted
// broker (test/tinymqtt/helpers.ts) with the client on a fake Espruino clock, so minutes pass in a moment; and
// mosquitto for what a real broker does with a packet out of order.
import test from 'ava';
import net from 'node:net';
import { espruinoClock } from '../helpers/clock.ts';
import { startMosquitto } from '../helpers/mosquitto.ts';
import mqtt from 'mqtt';
import { until } from '../helpers/until.ts';
import { loadTinymqtt, record, scriptedBroker } from './helpers.ts';

test('a broker that closes the connection on a refused PUBLISH: at most 15 connections in 300 s, and the publish fails with an error', async (t) => {
  // what AWS IoT does with a publish its policy denies, and mosquitto with one over its max_packet_size
  const broker = await scriptedBroker((conn, p) => {
    if (p.cmd === 'publish' && p.topic === 'report') {
      conn.close();
      return 'handled';
    }
  });
  const clock = espruinoClock();
  const tm = loadTinymqtt({ clock, random: () => 0.5 });
  const c = tm.create('127.0.0.1', { port: broker.port, transport: broker.transport, client_id: 'refused' });
  const { named } = record(c);
  const results: any[] = [];
  try {
    c.connect();
    await broker.run(clock, 1000);
    c.publish('report', 'denied', 1, (e: any) => results.push(e ? e.message : 'acknowledged'));
    await broker.run(clock, 300_000);
    t.log(`connections in 300 s: ${broker.conns.length}; callback: ${JSON.stringify(results)}`);
    t.true(broker.conns.length <= 15, `${broker.conns.length} connections`);
    t.deepEqual(results, ['no acknowledgement after 4 tries'], 'sent once, resent 3 times (retries), then failed');
    t.is(broker.conns.flatMap((x) => x.packets).filter((p) => p.cmd === 'publish').length, 4);
    t.true(named('connected').length >= 5);
    // and the client works: the connection that followed stays up and carries the next publish
    const next = new Promise((r) => c.publish('other', 'fine', 1, r));
    await broker.run(clock, 1000);
    t.is(await next, undefined);
  } finally {
    c.disconnect();
    await broker.stop();
  }
});

test('a link that drops 6 times before the SUBACK: one SUBSCRIBE per topic at the next connection, and a QoS 1 publish still has room', async (t) => {
  // the broker answers the first connection, then drops the next 6 as soon as a SUBSCRIBE arrives
  const broker = await scriptedBroker((conn, p) => {
    if (p.cmd === 'subscribe' && conn.n >= 2 && conn.n <= 7) {
      conn.close();
      return 'handled';
    }
  });
  const clock = espruinoClock();
  const tm = loadTinymqtt({ clock, random: () => 0.5 });
  const c = tm.create('127.0.0.1', { port: broker.port, transport: broker.transport, client_id: 'flappy', keep_alive: 0 });
  record(c);
  try {
    c.connect();
    await broker.run(clock, 1000);
    const granted: any[] = [];
    c.subscribe('a', 1, (e: any, q: any) => granted.push(e ?? q));
    c.subscribe('b', 1, (e: any, q: any) => granted.push(e ?? q));
    await broker.run(clock, 1000);
    t.deepEqual(granted, [1, 1]);
    broker.conns[0].close();
    while (broker.conns.length < 8) await broker.run(clock, 1000);
    await broker.run(clock, 1000);
    const last = broker.conns[7];
    t.deepEqual(last.packets.filter((p) => p.cmd === 'subscribe').map((p) => p.subscriptions[0].topic).sort(), ['a', 'b']);
    const results: any[] = [];
    for (let i = 0; i < 8; i++) c.publish('t', 'm' + i, 1, (e: any) => results.push(e ? e.message : 'ok'));
    await broker.run(clock, 1000);
    t.deepEqual(results, Array(8).fill('ok'), 'max_inflight (8) QoS 1 publishes taken and acknowledged');
    last.send({ cmd: 'publish', topic: 'a', payload: Buffer.from('x'), qos: 0 });
    const got = new Promise((r) => c.once('message', r));
    await broker.run(clock, 1000);
    t.like(await got, { topic: 'a', message: 'x' });
  } finally {
    c.disconnect();
    await broker.stop();
  }
});

for (const then of ['disconnect()', 'disconnect() then connect()'] as const) {
  test(`mosquitto: a message handler that calls ${then} for a QoS 1 message: no PUBACK on a closed or a new socket`, async (t) => {
    const m = await startMosquitto();
    const c = loadTinymqtt().create('127.0.0.1', { port: m.port, transport: net, client_id: 'handler-' + process.pid, reconnect_min: 0.1, reconnect_max: 0.2 });
    const { named, events } = record(c);
    const peer = await mqtt.connectAsync(`mqtt://127.0.0.1:${m.port}`, { clientId: 'peer-handler-' + process.pid });
    try {
      c.connect();
      await until(() => named('connected').length === 1);
      await new Promise((r) => c.subscribe('to/handler', 1, r));
      c.on('message', () => {
        c.disconnect();
        if (then !== 'disconnect()') c.connect();
      });
      await peer.publishAsync('to/handler', 'bye', { qos: 1 });
      if (then === 'disconnect()') {
        await until(() => named('disconnected').length >= 1);
        // a second disconnected event or a write error would come at once, from the PUBACK
        await new Promise((r) => setTimeout(r, 300));
        t.deepEqual(named('disconnected'), ['disconnect()']);
      } else {
        await until(() => named('connected').length === 2, 5000, () => JSON.stringify(events));
        await new Promise((r) => setTimeout(r, 300));
        t.deepEqual(named('disconnected'), ['disconnect()'], 'the new connection was not reset');
      }
      t.deepEqual(named('error'), []);
    } finally {
      c.disconnect();
      await peer.endAsync();
      await m.stop();
    }
  });
}
