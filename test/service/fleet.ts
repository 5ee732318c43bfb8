// A fleet's PKI and broker for the service tests: a CA, a server certificate for 127.0.0.1, one client certificate
// per thing (CN = thing name) and one for the collector (CN = defender-service); and a real mosquitto started on
// the shipped configuration (service/broker/mosquitto/), only its paths and port rewritten.
import { execFile } from 'node:child_process';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { mosquittoPath } from '../helpers/mosquitto.ts';
import { freePort } from '../helpers/net.ts';

const run = promisify(execFile);
const SHIPPED = fileURLToPath(new URL('../../service/broker/mosquitto/', import.meta.url));

export interface FleetPki {
  dir: string;
  caFile: string;
  certFile: string;
  keyFile: string;
  /** The files of a client certificate whose CN is `name`. */
  client(name: string): { caFile: string; certFile: string; keyFile: string };
  /** The PEM contents, for mqtt.js. */
  tls(name: string): { ca: Buffer; cert: Buffer; key: Buffer };
}

// P-256 keys: quick to make, and both mosquitto and node take them (the device's own RSA story is in test/helpers/certs.ts)
const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** A CA, a server certificate and client certificates for `names` (and defender-service), made with openssl. */
export async function makeFleetPki(names: string[]): Promise<FleetPki> {
  const dir = mkdtempSync(join(tmpdir(), 'fleet-pki-'));
  await run('openssl', ['req', '-x509', ...EC, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=fleet test CA'], { cwd: dir });
  const issue = (name: string, ext: string[]) =>
    run('openssl', ['req', '-x509', ...EC, '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '2', '-subj', `/CN=${name}`, '-CA', 'ca.crt', '-CAkey', 'ca.key', ...ext], { cwd: dir });
  await issue('server', ['-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-addext', 'extendedKeyUsage=serverAuth']);
  const clients = [...new Set(['defender-service', ...names])];
  for (let i = 0; i < clients.length; i += 8) await Promise.all(clients.slice(i, i + 8).map((n) => issue(n, ['-addext', 'extendedKeyUsage=clientAuth'])));
  const f = (n: string) => join(dir, n);
  const client = (name: string) => ({ caFile: f('ca.crt'), certFile: f(`${name}.crt`), keyFile: f(`${name}.key`) });
  return {
    dir,
    caFile: f('ca.crt'),
    certFile: f('server.crt'),
    keyFile: f('server.key'),
    client,
    tls: (name) => ({ ca: readFileSync(f('ca.crt')), cert: readFileSync(f(`${name}.crt`)), key: readFileSync(f(`${name}.key`)) }),
  };
}

export interface FleetMosquitto {
  port: number;
  url: string;
  /** Where it persists (pass it again to start it on the same state). */
  dataDir: string;
  process: ChildProcess;
  log(): string;
  /** SIGKILL, as a crash. */
  kill(): Promise<void>;
  stop(): Promise<void>;
}

/** mosquitto on the shipped configuration, on `port` (a free one by default), persisting to `dataDir`. */
export async function startFleetMosquitto(pki: FleetPki, opts: { port?: number; dataDir?: string } = {}): Promise<FleetMosquitto> {
  if (!mosquittoPath) throw new Error('mosquitto is not installed (apt-get install mosquitto; .ci/run does it)');
  const port = opts.port ?? (await freePort());
  const dataDir = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'mosquitto-data-'));
  mkdirSync(dataDir, { recursive: true });
  const conf = readFileSync(join(SHIPPED, 'mosquitto.conf'), 'utf8')
    .replace('acl_file /etc/mosquitto/defender/acl', `acl_file ${join(SHIPPED, 'acl')}`)
    .replaceAll('/etc/mosquitto/defender/', pki.dir + '/')
    .replace('persistence_location /var/lib/mosquitto/', `persistence_location ${dataDir}/`)
    .replace(/^listener 8883$/m, `listener ${port} 127.0.0.1`);
  // run as whoever runs the tests (as root, mosquitto would switch to its own user and lose the temp files)
  const file = join(dataDir, 'mosquitto.conf');
  writeFileSync(file, `${conf}\nuser ${userInfo().username}\nlog_dest stderr\nlog_type error\nlog_type warning\n`);
  const child = spawn(mosquittoPath, ['-c', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  for (const deadline = Date.now() + 10000; ; ) {
    const up = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => (s.destroy(), resolve(true)));
      s.once('error', () => (s.destroy(), resolve(false)));
    });
    if (up) break;
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`mosquitto did not listen on ${port}: ${output}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const alive = () => child.exitCode === null && child.signalCode === null;
  return {
    port,
    url: `mqtts://127.0.0.1:${port}`,
    dataDir,
    process: child,
    log: () => output,
    async kill() {
      if (alive()) child.kill('SIGKILL');
      await exited;
    },
    async stop() {
      if (alive()) child.kill('SIGTERM');
      await exited;
    },
  };
}
