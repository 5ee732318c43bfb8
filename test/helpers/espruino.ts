// Runs Espruino's Linux interpreter, named by the environment variable ESPRUINO, in a scratch
// folder of its own (its Storage lives in ./espruino.flash there). Tests that need it are skipped,
// with a message, when ESPRUINO is not set. A relative ESPRUINO is taken from the project root, since the
// interpreter is started from scratch folders.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = join(import.meta.dirname, '..', '..');
export const espruino = process.env.ESPRUINO ? resolve(root, process.env.ESPRUINO) : '';
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

/** Inodes of the sockets listening on TCP `port` (any address), from /proc: looking costs no connection. */
function listeners(port: number): Set<string> {
  const found = new Set<string>();
  const hex = ':' + port.toString(16).toUpperCase().padStart(4, '0');
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length > 9 && f[1].endsWith(hex) && f[3] === '0A') found.add(f[9]);
    }
  }
  return found;
}

/** Inodes of the sockets process `pid` holds. */
function socketsOf(pid: number): Set<string> {
  const found = new Set<string>();
  try {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) found.add(m[1]);
    }
  } catch {
    // the process is gone: no sockets
  }
  return found;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Starts the interpreter with its telnet server (port 2323, fixed by Espruino) in `dir`.
 * Ready once its own socket listens on 2323, seen in /proc: a probe connection opened and closed at once would
 * leave this version's telnet console detached (the program's output then never reaches the next connection).
 * Another interpreter may hold the port (a test run of another worktree): it then waits for the port to be free. */
export async function startTelnet(dir: string): Promise<{ child: ChildProcess; output: () => string; stop: () => Promise<void> }> {
  const port = 2323;
  const deadline = Date.now() + 180000;
  for (;;) {
    while (listeners(port).size) {
      if (Date.now() > deadline) throw new Error(`port ${port} stays taken by another process`);
      await sleep(200);
    }
    // Standard input stays open (see runScript).
    const child = spawn(espruino, ['--telnet'], { cwd: dir, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (out += d));
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    const stop = async () => {
      child.kill('SIGKILL');
      await exited;
    };
    const started = Date.now();
    for (;;) {
      const mine = socketsOf(child.pid!);
      const listening = listeners(port);
      if ([...listening].some((inode) => mine.has(inode))) return { child, output: () => out, stop };
      if (child.exitCode !== null || Date.now() - started > 10000) {
        await stop();
        throw new Error(`Espruino telnet server did not listen on ${port}: ${out}`);
      }
      // Someone else took the port first: start again once it is free.
      if (listening.size && /\n>/.test(out)) {
        await stop();
        break;
      }
      await sleep(20);
    }
  }
}
