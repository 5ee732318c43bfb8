// build/tinymqtt.js on a real Espruino interpreter (ESPRUINO names it), loaded from Storage, against mosquitto
// through Espruino's own net: connect, subscribe, QoS 0 and 1 both ways with every byte value, a Uint8Array
// payload, and the JsVars the module and a connected client cost; and against a scripted broker that closes on a
// refused PUBLISH (Espruino's close and connect callbacks, resends over reconnects). Skipped without ESPRUINO.
import test from 'ava';
import mqtt from 'mqtt';
import { espruino, skipMessage, scratch, storageWriteBundle, runScript } from '../helpers/espruino.ts';
import { startMosquitto } from '../helpers/mosquitto.ts';
import { scriptedBroker } from './helpers.ts';

const run = espruino ? test : test.skip;
if (!espruino) console.log('tinymqtt on Espruino: ' + skipMessage);

run('tinymqtt from Storage talks to mosquitto over Espruino net: QoS 0/1 both ways, binary-safe', async (t) => {
  const m = await startMosquitto();
  const peer = await mqtt.connectAsync(`mqtt://127.0.0.1:${m.port}`, { clientId: 'peer-esp' });
  const fromDevice: { topic: string; payload: Buffer; qos: number }[] = [];
  peer.on('message', (topic, payload, p) => {
    fromDevice.push({ topic, payload, qos: p.qos });
    // answer the device's hello with every byte value, QoS 1
    if (topic === 'dev/hello') peer.publish('to/dev/bytes', Buffer.from(Array.from({ length: 256 }, (_, i) => i)), { qos: 1 });
  });
  await peer.subscribeAsync('dev/#', { qos: 1 });
  const dir = scratch();
  try {
    await runScript(dir, storageWriteBundle('tinymqtt') + 'console.log("WRITTEN");\n');
    const script = `
var m0 = process.memory().usage;
var tm = require("tinymqtt");
var m1 = process.memory().usage;
var c = tm.create("127.0.0.1", { port: ${m.port}, client_id: "esp-dev", keep_alive: 10 });
c.on("error", function (e) { console.log("ERROR " + e.message); });
c.on("connected", function () {
  console.log("CONNECTED");
  c.subscribe("to/dev/#", 1, function (err, q) {
    console.log("SUBACK " + err + " " + q);
    c.publish("dev/q0", "plain", 0);
    var all = ""; for (var i = 0; i < 256; i++) all += String.fromCharCode(i);
    c.publish("dev/q1", all, 1, function (err) { console.log("PUBACK " + err); });
    c.publish("dev/u8", new Uint8Array([0, 255, 128, 1]).subarray(1, 3), 1);
    c.publish("dev/hello", "hi", 1);
  });
});
c.on("message", function (msg) {
  var ok = msg.message.length === 256;
  for (var i = 0; ok && i < 256; i++) ok = msg.message.charCodeAt(i) === i;
  console.log("MESSAGE " + msg.topic + " " + ok);
  console.log("JSVARS module " + (m1 - m0) + " connected client " + (process.memory().usage - m1));
  c.disconnect();
  setTimeout(function () { quit(); }, 100);
});
c.connect();
`;
    const r = await runScript(dir, script, 30000);
    t.regex(r.out, /CONNECTED/, r.out);
    t.regex(r.out, /SUBACK undefined 1/, r.out);
    t.regex(r.out, /PUBACK undefined/, r.out);
    t.regex(r.out, /MESSAGE to\/dev\/bytes true/, r.out);
    t.notRegex(r.out, /ERROR|Uncaught/, r.out);
    const byTopic = Object.fromEntries(fromDevice.map((x) => [x.topic, x]));
    t.deepEqual(byTopic['dev/q0']?.payload, Buffer.from('plain'));
    t.deepEqual(byTopic['dev/q1']?.payload, Buffer.from(Array.from({ length: 256 }, (_, i) => i)));
    t.is(byTopic['dev/q1']?.qos, 1);
    t.deepEqual(byTopic['dev/u8']?.payload, Buffer.from([255, 128]));
    t.log(/JSVARS .*/.exec(r.out)?.[0]);
  } finally {
    await peer.endAsync();
    await m.stop();
  }
});

run('tinymqtt from Storage on Espruino, a broker that closes on a refused PUBLISH: resent 3 times over reconnects, then the callback fails', async (t) => {
  const broker = await scriptedBroker((conn, p) => {
    if (p.cmd === 'publish' && p.topic === 'report') {
      conn.close();
      return 'handled';
    }
  });
  const dir = scratch();
  try {
    await runScript(dir, storageWriteBundle('tinymqtt') + 'console.log("WRITTEN");\n');
    const r = await runScript(
      dir,
      `var c = require("tinymqtt").create("127.0.0.1", { port: ${broker.port}, client_id: "esp-refused", reconnect_min: 0.1, reconnect_max: 1 });
var ups = 0, downs = [];
c.on("connected", function () {
  if (++ups == 1) c.publish("report", new Uint8Array([1, 2, 3]), 1, function (err) {
    console.log("CALLBACK " + (err && err.message) + ", down: " + downs.join("|"));
    c.publish("other", "fine", 1, function (err) { console.log("NEXT " + err); c.disconnect(); setTimeout(quit, 50); });
  });
});
c.on("disconnected", function (why) { downs.push(why); });
c.connect();
`,
      30000,
    );
    t.regex(r.out, /CALLBACK no acknowledgement after 4 tries, down: connection closed\|connection closed\|connection closed\|connection closed\r?\n/, r.out);
    t.is(broker.conns.length, 5, 'the failure came at the fifth CONNACK, which stayed up');
    t.regex(r.out, /NEXT undefined/, r.out);
    const publishes = broker.conns.flatMap((x) => x.packets).filter((p) => p.cmd === 'publish' && p.topic === 'report');
    t.deepEqual(publishes.map((p) => [p.dup, [...p.payload]]), [[false, [1, 2, 3]], [true, [1, 2, 3]], [true, [1, 2, 3]], [true, [1, 2, 3]]]);
  } finally {
    await broker.stop();
  }
});
