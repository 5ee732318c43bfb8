// build/firmware.js on a real Espruino interpreter (ESPRUINO names it), as on a board after provision and upload:
// the two modules and the secrets in Storage, a stand-in Wifi module (the Linux build has none) registered before
// the firmware runs, and Espruino's own tls (mbedTLS) to mosquitto set up like AWS IoT (TLS, client certificate
// required). The local Device Defender service is attached to mosquitto: the firmware's reports are accepted.
// Skipped without ESPRUINO.
import test from 'ava';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from '../tools/build.mjs';
import { espruino, skipMessage, scratch, storageWrite, runScript } from './helpers/espruino.ts';
import { startMosquitto } from './helpers/mosquitto.ts';
import { makePki, der } from './helpers/certs.ts';
import { startService } from '../service/service.ts';

const run = espruino ? test : test.skip;
if (!espruino) console.log('firmware on Espruino: ' + skipMessage);

run('the firmware on Espruino: Wi-Fi, TLS with the Storage certificates, reports accepted', async (t) => {
  const pki = makePki();
  const m = await startMosquitto({ tls: pki, plainListener: true });
  const svc = await startService({ broker: `mqtt://127.0.0.1:${m.plainPort}`, minPeriod: 0.5 });
  const out = mkdtempSync(join(tmpdir(), 'fw-esp-'));
  const config = { board: 'ESP32', port: '/dev/null', baud: 115200, wifi: { ssid: 'test-net' }, endpoint: 'localhost', mqttPort: m.port, thingName: 'esp-fw', period: 1, minPeriod: 1 };
  writeFileSync(join(out, 'espruino.config.json'), JSON.stringify(config));
  await build({ configPath: join(out, 'espruino.config.json'), out, quiet: true });
  const dir = scratch();
  try {
    const files = { tinymqtt: 'tinymqtt.js', defender: 'defender.js' };
    let setup = '';
    for (const [name, file] of Object.entries(files)) setup += storageWrite(name, readFileSync(join(out, file)));
    // as `npm run provision` writes them: DER
    const bin = (pem: string) => Buffer.from(der(pem), 'latin1');
    setup += storageWrite('device.crt', bin(pki.clientCert)) + storageWrite('device.key', bin(pki.clientKey)) + storageWrite('ca.crt', bin(pki.ca)) + storageWrite('wifi.pass', 'pw');
    await runScript(dir, setup + 'console.log("WRITTEN");\n');
    // a board's Wifi, as far as the firmware uses it
    const wifi = `Modules.addCached("Wifi", function () {
  var w = {};
  w.connect = function (ssid, opts, cb) { setTimeout(function () { cb(null); }, 10); };
  w.setSNTP = function () {};
  w.getHostByName = function (name, cb) { setTimeout(function () { cb(name === "localhost" ? "127.0.0.1" : undefined); }, 1); };
  module.exports = w;
});
// the interpreter quits after the firmware's second "accepted" line
var accepted = 0, log = console.log;
console.log = function (s) { log(s); if (/report \\d+ accepted/.test(s) && ++accepted === 2) setTimeout(function () { quit(); }, 100); };
`;
    const r = await runScript(dir, wifi + readFileSync(join(out, 'firmware.js'), 'utf8'), 90000);
    t.regex(r.out, /espruino-defender: found device\.crt, device\.key, ca\.crt, wifi\.pass in Storage/, r.out);
    t.regex(r.out, /espruino-defender: Wi-Fi test-net up/, r.out);
    t.regex(r.out, /espruino-defender: MQTT connected to localhost:\d+/, r.out);
    t.regex(r.out, /espruino-defender: Device Defender agent started/, r.out);
    t.regex(r.out, /espruino-defender: report \d+ accepted[\s\S]*report \d+ accepted/, r.out);
    t.notRegex(r.out, /Uncaught|MQTT error/, r.out);
    const reports = svc.reports('esp-fw');
    t.true(reports.length >= 2);
    const doc = reports[reports.length - 1].doc;
    t.true(doc.met.tc.ec.cs.some((c: any) => c.rad === `127.0.0.1:${m.port}`), JSON.stringify(doc.met.tc));
  } finally {
    await svc.close();
    await m.stop();
  }
});
