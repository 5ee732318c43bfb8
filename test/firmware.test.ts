// build/firmware.js on a simulated board (sim/board.ts) with a fake Wifi module and Node's tls (fed the DER secrets
// as Espruino's is), against mosquitto set up like AWS IoT (TLS, client certificate required; RSA certificates made
// for the test), with the local
// Device Defender service attached to it: the report is accepted. A wrong CA, a client certificate the broker
// does not trust, and missing secrets each give a clear log line and a retry, never a crash.
import test from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventEmitter } from 'node:events';
import { build } from '../tools/build.mjs';
import { board } from '../sim/board.ts';
import { startService } from '../service/service.ts';
import { startMosquitto } from './helpers/mosquitto.ts';
import { makePki, der, type Pki } from './helpers/certs.ts';
import { until } from './helpers/until.ts';

const THING = 'fw-test';

/** Builds the firmware for an endpoint on this machine: localhost (the test server certificate's name). */
async function buildFor(port: number): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'fw-'));
  const config = {
    board: 'ESP32',
    port: '/dev/null',
    baud: 115200,
    wifi: { ssid: 'test-net' },
    endpoint: 'localhost',
    mqttPort: port,
    thingName: THING,
    period: 1,
    minPeriod: 1,
  };
  writeFileSync(join(dir, 'espruino.config.json'), JSON.stringify(config));
  await build({ configPath: join(dir, 'espruino.config.json'), out: dir, quiet: true });
  return dir;
}

/** Espruino's Wifi, as far as the firmware uses it: connect succeeds after a moment (or fails `failures` times). */
class FakeWifi extends EventEmitter {
  sntp: string[] = [];
  connects = 0;
  constructor(private failures = 0) {
    super();
  }
  connect(_ssid: string, _opts: any, cb: (err?: any) => void) {
    this.connects++;
    setTimeout(() => cb(this.connects <= this.failures ? 'AUTH_FAIL' : undefined), 10);
  }
  setSNTP(server: string) {
    this.sntp.push(server);
  }
}

function secrets(pki: Pki, over: Record<string, string | undefined> = {}): Record<string, string> {
  const files: Record<string, string | undefined> = { 'device.crt': der(pki.clientCert), 'device.key': der(pki.clientKey), 'ca.crt': der(pki.ca), 'wifi.pass': 'pw', ...over };
  return Object.fromEntries(Object.entries(files).filter(([, v]) => v !== undefined)) as Record<string, string>;
}

let pki: Pki;
test.before(() => {
  pki = makePki();
});

test('the firmware joins Wi-Fi, connects over TLS with the Storage certificates, and its report is accepted', async (t) => {
  const m = await startMosquitto({ tls: pki, plainListener: true });
  const svc = await startService({ broker: `mqtt://127.0.0.1:${m.plainPort}`, minPeriod: 0.5 });
  const dir = await buildFor(m.port);
  const lines: string[] = [];
  const wifi = new FakeWifi(1);
  const b = board({ build: dir, files: secrets(pki), wifi, log: (l) => lines.push(l) });
  try {
    b.run('firmware');
    await until(() => lines.some((l) => /report \d+ accepted/.test(l)), 15000, () => lines.join('\n'));
    const log = lines.join('\n');
    t.regex(log, /espruino-defender: starting, thing fw-test, endpoint localhost/);
    t.regex(log, /found device\.crt, device\.key, ca\.crt, wifi\.pass in Storage/);
    t.regex(log, /Wi-Fi test-net failed: AUTH_FAIL; retrying in 1 s/, 'a failed join is retried');
    t.regex(log, /Wi-Fi test-net up/);
    t.regex(log, /MQTT connected to localhost:\d+/);
    t.regex(log, /Device Defender agent started, a report every 1 s/);
    t.deepEqual(wifi.sntp, ['pool.ntp.org']);
    const reports = svc.reports(THING);
    t.true(reports.length >= 1);
    t.is(reports[0].verdict, 'ACCEPTED', JSON.stringify(reports[0]));
    // the report lists the device's own MQTT connection, to the broker's address
    const cs = reports[0].doc.met.tc.ec.cs;
    t.true(cs.some((c: any) => c.rad === `127.0.0.1:${m.port}`), JSON.stringify(cs));
    t.is(typeof b.global.mqtt?.publish, 'function', 'the MQTT client is global `mqtt` for the application');
  } finally {
    b.stop();
    await svc.close();
    await m.stop();
  }
});

test('a wrong CA, an untrusted client certificate and missing secrets: a clear log line and a retry, no crash', async (t) => {
  const other = makePki();
  const m = await startMosquitto({ tls: pki });
  const dir = await buildFor(m.port);
  const cases: [string, Record<string, string | undefined>, RegExp][] = [
    ['wrong CA', { 'ca.crt': der(other.ca) }, /MQTT error: .*certificate/i],
    ['untrusted client certificate', { 'device.crt': der(other.clientCert), 'device.key': der(other.clientKey) }, /MQTT (error|disconnected): /],
    ['no device certificate in Storage', { 'device.crt': undefined }, /cannot connect without the device certificate, key and CA \(npm run provision\); retrying in 1 s/],
  ];
  try {
    for (const [what, over, expected] of cases) {
      const lines: string[] = [];
      const b = board({ build: dir, files: secrets(pki, over), wifi: new FakeWifi(), log: (l) => lines.push(l) });
      const crashes: unknown[] = [];
      const onCrash = (e: unknown) => crashes.push(e);
      process.on('uncaughtException', onCrash);
      try {
        b.run('firmware');
        await until(() => expected.test(lines.join('\n')), 10000, () => lines.join('\n'));
        // still trying a while later
        const n = lines.length;
        await until(() => lines.length > n + 1, 10000, () => lines.join('\n'));
        t.deepEqual(crashes, [], what);
        t.notRegex(lines.join('\n'), /accepted|agent started/, what);
        t.log(`${what}: ${lines.find((l) => expected.test(l))}`);
      } finally {
        process.off('uncaughtException', onCrash);
        b.stop();
      }
    }
  } finally {
    await m.stop();
  }
});
