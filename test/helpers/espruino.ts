// Runs Espruino's Linux interpreter, named by the environment variable ESPRUINO, in a scratch
// folder of its own (its Storage lives in ./espruino.flash there). Tests that need it are skipped,
// with a message, when ESPRUINO is not set.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const espruino = process.env.ESPRUINO || '';
export const skipMessage = 'skipped: set ESPRUINO=/path/to/espruino (Espruino Linux build) to run';

/** A fresh folder for one interpreter's Storage. */
export function scratch(): string {
  return mkdtempSync(join(tmpdir(), 'espruino-'));
}

/** JS that writes `content` to Storage file `name` (base64, so any bytes survive). */
export function storageWrite(name: string, content: string | Buffer): string {
  const b64 = Buffer.from(content).toString('base64');
  return `require("Storage").write(${JSON.stringify(name)},atob(${JSON.stringify(b64)}));\n`;
}

/** JS that writes a built bundle to Storage under its name. */
export function storageWriteBundle(name: string): string {
  return storageWrite(name, readFileSync(join(import.meta.dirname, '..', '..', 'build', name + '.js')));
}

export interface Run {
  out: string;
  code: number | null;
  timedOut: boolean;
}

/** Runs `code` as a script in `dir`; stops it after `ms` if it has not exited (pending timers keep it alive). */
export function runScript(dir: string, code: string, ms = 10000): Promise<Run> {
  const file = join(dir, 'script.js');
  writeFileSync(file, code);
  return new Promise((resolve) => {
    // Standard input is an open, empty pipe: an unpatched Linux build reads garbage from a closed one.
    // It still exits by itself once no timer or socket is left.
    const child = spawn(espruino, [file], { cwd: dir, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let timedOut = false;
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, ms);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ out: stripBanner(out), code, timedOut });
    });
  });
}

/** Drops the start-up banner (everything up to the copyright lines). */
export function stripBanner(out: string): string {
  const i = out.indexOf('espruino.com/Donate');
  return i < 0 ? out : out.slice(out.indexOf('\n', i) + 1);
}

/** Starts the interpreter with its telnet server (port 2323, fixed by Espruino) in `dir`. */
export async function startTelnet(dir: string): Promise<{ child: ChildProcess; output: () => string; stop: () => Promise<void> }> {
  // Standard input stays open (see runScript).
  const child = spawn(espruino, ['--telnet'], { cwd: dir, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const deadline = Date.now() + 5000;
  for (;;) {
    const ok = await new Promise<boolean>((r) => {
      const s = connect(2323, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        r(true);
      });
      s.once('error', () => r(false));
    });
    if (ok) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error('Espruino telnet server did not listen on 2323: ' + out);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    child,
    output: () => out,
    async stop() {
      child.kill('SIGKILL');
      await exited;
    },
  };
}
