// The device as it runs on a board, on a real Espruino interpreter (ESPRUINO names it): tinymqtt and defender
// loaded from Storage, a tracked net for the MQTT connection and one more connection, a tracked server listening,
// the agent reporting every second to the local service attached to mosquitto, in each format and tag style.
// Every report must be accepted and show what the device did. Skipped without ESPRUINO.
import test from 'ava';
import { createServer, type Server } from 'node:net';
import { espruino, skipMessage, scratch, storageWriteBundle, runScript } from '../helpers/espruino.ts';
import { startMosquitto } from '../helpers/mosquitto.ts';
import { freePort } from '../helpers/net.ts';
import { startService } from '../../service/service.ts';

const run = espruino ? test.serial : test.skip;
if (!espruino) console.log('device end to end on Espruino: ' + skipMessage);

for (const [format, longTags] of [['cbor', false], ['json', true]] as const) {
  run(`${format}${longTags ? ', long tags' : ''}: reports from Espruino are accepted by the local service`, async (t) => {
    const m = await startMosquitto();
    const svc = await startService({ broker: `mqtt://127.0.0.1:${m.port}`, minPeriod: 0.5 });
    const echo: Server = createServer((s) => s.pipe(s));
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
    const echoPort = (echo.address() as any).port;
    const listenPort = await freePort();
    const dir = scratch();
    try {
      await runScript(dir, storageWriteBundle('tinymqtt') + storageWriteBundle('defender') + 'console.log("WRITTEN");\n');
      const script = `
var d = require("defender");
var net = d.track(require("net"));
var srv = net.createServer(function (s) { s.end(); });
srv.listen(${listenPort});
var other = net.connect({ host: "127.0.0.1", port: ${echoPort} }, function () { other.write("ping"); });
var c = require("tinymqtt").create("127.0.0.1", { port: ${m.port}, client_id: "esp-e2e", transport: net });
var n = 0;
c.on("error", function (e) { console.log("ERROR " + e.message); });
c.on("connected", function () {
  console.log("START " + d.start({ mqtt: c, thingName: "esp-e2e", format: "${format}", longTags: ${longTags}, period: 1, minPeriod: 1,
    callback: function (ev) {
      console.log("EVENT " + ev.type + " " + ev.reportId + " " + ev.code + " " + ev.message);
      if (++n === 3) { d.stop(); c.disconnect(); other.end(); srv.close(); setTimeout(function () { quit(); }, 200); }
    } }));
});
c.connect();
`;
      const r = await runScript(dir, script, 30000);
      t.regex(r.out, /START 0/, r.out);
      t.is([...r.out.matchAll(/EVENT 1 \d+/g)].length, 3, r.out);
      t.notRegex(r.out, /ERROR|Uncaught|EVENT [2-8]/, r.out);
      const reports = svc.reports('esp-e2e');
      t.is(reports.length, 3);
      for (const rep of reports) t.is(rep.verdict, 'ACCEPTED', JSON.stringify(rep));
      const doc = reports[2].doc;
      const met = longTags ? doc.metrics : doc.met;
      const conns = longTags ? met.tcp_connections.established_connections : met.tc.ec;
      const list = (longTags ? conns.connections : conns.cs).map((c: any) => c.remote_addr ?? c.rad);
      t.true(list.includes(`127.0.0.1:${m.port}`), JSON.stringify(conns));
      t.true(list.includes(`127.0.0.1:${echoPort}`), JSON.stringify(conns));
      const ports = longTags ? met.listening_tcp_ports.ports.map((p: any) => p.port) : met.tp.pts.map((p: any) => p.pt);
      t.deepEqual(ports, [listenPort]);
    } finally {
      echo.close();
      await svc.close();
      await m.stop();
    }
  });
}
