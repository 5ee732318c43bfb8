// Stand-ins for a board, for the upload and provision tests: a port that never answers, a port nobody listens on,
// and a way to run a tool without blocking the test process (which serves the stand-in).
import { spawn } from 'node:child_process';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..', '..');

/** Runs a tool without blocking this process (a fake board here must keep answering, or not). */
export function runTool(tool: string, args: string[], env = process.env): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [tool, ...args], { cwd: root, env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (status) => done({ status, stdout, stderr }));
  });
}

/** A TCP port that accepts connections and never says a word. */
export async function silentBoard(): Promise<{ port: number; received: () => number; close: () => void }> {
  let bytes = 0;
  const sockets: Socket[] = [];
  const srv = createServer((s) => {
    sockets.push(s);
    s.on('data', (d) => (bytes += d.length));
    s.on('error', () => {});
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return {
    port: (srv.address() as any).port,
    received: () => bytes,
    close: () => {
      for (const s of sockets) s.destroy();
      srv.close();
    },
  };
}

/** A loopback port nobody listens on. */
export async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as any).port;
  await new Promise((r) => srv.close(r));
  return port;
}

