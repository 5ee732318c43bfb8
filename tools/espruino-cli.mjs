// Shared by `npm run upload` and `npm run provision`: talks to a board through the espruino CLI from npm, then
// reads back what it wrote. The CLI exits 0 whatever happened (no board, a refused connection, a board that never
// answers, a connection cut mid-upload), so its exit status proves nothing: success is decided here, by asking the
// board, in a second CLI session, for the size (and CRC32) of every Storage file that was written.
// Port, baud and board come from espruino.config.json; the flags below override them.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { crc32 } from 'node:zlib';
import { loadConfig } from './config.mjs';
import { parseFlags, usage, UsageError } from './args.mjs';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(root, 'node_modules', 'espruino', 'bin', 'espruino-cli.js');

/** Flags of both programs. */
export const connectionFlags = {
  port: { type: 'string', value: 'PORT', help: 'serial device, Bluetooth address or tcp://HOST:PORT (default: "port" of the config)' },
  baud: { type: 'string', value: 'BAUD', help: 'serial baud rate (default: "baud" of the config)' },
  board: { type: 'string', value: 'NAME', help: 'Espruino board name or board JSON file (default: "board" of the config)' },
  config: { type: 'string', value: 'FILE', help: "the config file (default: the project's espruino.config.json)" },
  print: { type: 'boolean', help: 'print the espruino CLI command instead of running it' },
  help: { type: 'boolean', short: 'h', help: 'print this help and exit' },
};

/** How long the CLI may take: an upload over a slow serial line, and one question to the board. */
const UPLOAD_MS = 300000;
const QUESTION_MS = 30000;

/** The board JSON to give the CLI: a file of ours for a known board name, so that it works
 * offline and does not try to download the Storage modules from the online module library. */
function boardArg(board) {
  if (board.endsWith('.json')) return resolve(board);
  const local = join(root, 'tools', 'boards', board + '.json');
  return existsSync(local) ? local : board;
}

/** Parses the command line and loads the config; `null` after printing --help. */
export function parseCommandLine(argv, command, summary, flags) {
  const values = parseFlags(argv, flags);
  if (values.help) {
    process.stdout.write(usage(command, summary, flags));
    return null;
  }
  if (values.baud !== undefined && !/^[1-9]\d*$/.test(values.baud)) throw new UsageError(`--baud is a whole number of bits per second, not "${values.baud}"`);
  return { values, config: loadConfig(values.config ? resolve(values.config) : undefined) };
}

/** The board's address: --port or the config's. */
export const portOf = (values, config) => values.port ?? config.port;

/** The CLI arguments that reach the board (or, with `output`, a file), before the job's own. */
export function connectionArgs(values, config, output) {
  const args = ['--no-ble', '--config', 'MODULE_URL=', '--board', boardArg(values.board ?? config.board)];
  if (output) args.push('-n', '-o', output);
  else args.push('-p', portOf(values, config), '-b', String(values.baud ?? config.baud));
  return args;
}

/** Runs the CLI; its output goes on to ours when `echo` is set, and comes back as text either way. */
export function runCli(args, { echo = true, timeout = UPLOAD_MS } = {}) {
  return new Promise((done) => {
    const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    let timedOut = false;
    for (const [from, to] of [[child.stdout, process.stdout], [child.stderr, process.stderr]]) {
      from.on('data', (d) => {
        text += d;
        if (echo) to.write(d);
      });
    }
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeout);
    child.on('close', (status) => {
      clearTimeout(timer);
      done({ status, text, timedOut });
    });
  });
}

/** Why the CLI did not reach the board, from its output; '' when it connected (whatever happened next). */
export function notReached(run) {
  if (/^Connected\r?$/m.test(run.text)) return '';
  const refused = /RECEIVE ERROR: (\{.*\})/.exec(run.text);
  if (refused) {
    const e = JSON.parse(refused[1]);
    return [e.code, e.address && `${e.address}:${e.port}`].filter(Boolean).join(' ') || 'receive error';
  }
  const said = /Unable to connect|Port named .* not found/.exec(run.text);
  if (said) return said[0];
  if (run.timedOut) return `no connection after ${UPLOAD_MS / 1000} s`;
  return run.status ? `the espruino CLI exited with status ${run.status}` : 'no connection';
}

/** What the board should hold: Storage file name -> its bytes. */
export const expectation = (files) => Object.entries(files).map(([name, bytes]) => ({ name, size: bytes.length, crc: crc32(bytes) }));

/**
 * Asks the board for the size (and, with `withCrc`, the CRC32) of each expected file and compares.
 * Returns '' when everything matches, else one line saying what differs; throws when the board does not answer.
 * `secret`: the files hold secrets, so a difference is named without sizes.
 */
export async function readBack(values, config, expected, { withCrc, secret }) {
  const names = JSON.stringify(expected.map((e) => e.name));
  // The marker is split in the source so that an echo of the command can never pass for the answer.
  const expr = `(function(s,n){print("READ"+"BACK="+JSON.stringify(n.map(function(f){f=s.read(f);return f===undefined?null:[f.length${withCrc ? ',E.CRC32(f)' : ''}]})))})(require("Storage"),${names})`;
  // Asked up to three times: a board may still be busy with what it was just sent (a cut upload's last line, a
  // firmware starting) and miss the first question.
  let run, answer;
  for (let attempt = 1; attempt <= 3 && !answer; attempt++) {
    if (attempt > 1) await new Promise((r) => setTimeout(r, 1000));
    run = await runCli([...connectionArgs(values, config), '-e', expr], { echo: false, timeout: QUESTION_MS });
    answer = /READBACK=(\[.*\])/.exec(run.text);
  }
  if (!answer) throw new Error(`the board on ${portOf(values, config)} did not answer${notReached(run) ? ` (${notReached(run)})` : ''}`);
  const got = JSON.parse(answer[1]);
  const problems = expected.flatMap((e, i) => {
    const g = got[i];
    if (!g) return [`${e.name} is missing`];
    if (g[0] !== e.size) return [secret ? `${e.name} has the wrong size` : `${e.name} is ${g[0]} bytes on the board, ${e.size} sent`];
    if (withCrc && g[1] >>> 0 !== e.crc) return [`${e.name} has other content (CRC32 ${hex(g[1])} on the board, ${hex(e.crc)} sent)`];
    return [];
  });
  return problems.join('; ');
}

const hex = (n) => '0x' + (n >>> 0).toString(16).padStart(8, '0');

/** Runs main, turning a thrown error into one line: exit status 2 for a usage error, 1 for any other. */
export async function runMain(name, main) {
  try {
    process.exitCode = await main();
  } catch (err) {
    console.error(`${name}: ${err.message}`);
    process.exitCode = err instanceof UsageError ? 2 : 1;
  }
}
