// Starts Debian's mosquitto on a free loopback port with a config of our own, and stops it.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { freePort } from './net.ts';
import type { Pki } from './certs.ts';

export const mosquittoPath = ['/usr/sbin/mosquitto', '/usr/bin/mosquitto'].find((p) => existsSync(p));

export interface Mosquitto {
  port: number;
  /** With `plainListener`: a second, plain TCP listener (for a local service beside TLS devices). */
  plainPort?: number;
  process: ChildProcess;
  /** What mosquitto printed, for failure messages. */
  log(): string;
  stop(): Promise<void>;
}

export interface MosquittoOptions {
  /** TLS like AWS IoT: TLS 1.2, client certificate required. */
  tls?: Pki;
  port?: number;
  /** Also listen on a free port without TLS. */
  plainListener?: boolean;
}

function waitForPort(port: number, deadline: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve();
      });
      s.once('error', () => {
        s.destroy();
        if (Date.now() > deadline) reject(new Error(`mosquitto did not listen on ${port}`));
        else setTimeout(attempt, 50);
      });
    };
    attempt();
  });
}

export async function startMosquitto(opts: MosquittoOptions = {}): Promise<Mosquitto> {
  if (!mosquittoPath) throw new Error('mosquitto is not installed (apt-get install mosquitto; .ci/run does it)');
  const port = opts.port ?? (await freePort());
  const dir = mkdtempSync(join(tmpdir(), 'mosquitto-'));
  const lines = [`listener ${port} 127.0.0.1`, 'allow_anonymous true', 'persistence false', 'log_dest stderr', 'log_type error', 'log_type warning',
    // Run as whoever runs the tests (mosquitto started as root would switch to its own user and lose access to the temp files).
    `user ${userInfo().username}`];
  if (opts.tls) {
    lines.push(
      `cafile ${opts.tls.caFile}`,
      `certfile ${opts.tls.serverCertFile}`,
      `keyfile ${opts.tls.serverKeyFile}`,
      'require_certificate true',
      'tls_version tlsv1.2',
    );
  }
  const plainPort = opts.plainListener ? await freePort() : undefined;
  if (plainPort) lines.push(`listener ${plainPort} 127.0.0.1`);
  const conf = join(dir, 'mosquitto.conf');
  writeFileSync(conf, lines.join('\n') + '\n');
  const child = spawn(mosquittoPath, ['-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    await waitForPort(port, Date.now() + 5000);
    if (plainPort) await waitForPort(plainPort, Date.now() + 5000);
  } catch (err) {
    child.kill('SIGKILL');
    throw new Error(`${(err as Error).message}: ${output}`);
  }
  return {
    port,
    plainPort,
    process: child,
    log: () => output,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
