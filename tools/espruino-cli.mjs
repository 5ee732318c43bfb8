// Shared by `npm run upload` and `npm run provision`: talks to a board through the espruino CLI
// from npm. Port, baud and board come from espruino.config.json; --port, --baud, --board and
// --config override them; --output FILE writes what would be sent to FILE (no board needed);
// --print shows the CLI command instead of running it.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { loadConfig } from './config.mjs';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(root, 'node_modules', 'espruino', 'bin', 'espruino-cli.js');

const commonOptions = {
  port: { type: 'string' },
  baud: { type: 'string' },
  board: { type: 'string' },
  config: { type: 'string' },
  output: { type: 'string', short: 'o' },
  print: { type: 'boolean' },
};

/** The board JSON to give the CLI: a file of ours for a known board name, so that it works
 * offline and does not try to download the Storage modules from the online module library. */
function boardArg(board) {
  if (board.endsWith('.json')) return resolve(board);
  const local = join(root, 'tools', 'boards', board + '.json');
  return existsSync(local) ? local : board;
}

/** Parses the command line (common options plus `options`) and loads the config. */
export function parseCommandLine(options = {}) {
  const { values } = parseArgs({ options: { ...commonOptions, ...options } });
  const config = loadConfig(values.config ? resolve(values.config) : undefined);
  return { values, config };
}

/** The CLI arguments that reach the board (or the output file), before the job's own. */
export function connectionArgs(values, config) {
  const args = ['--no-ble', '--config', 'MODULE_URL=', '--board', boardArg(values.board ?? config.board)];
  if (values.output) args.push('-n', '-o', resolve(values.output));
  else args.push('-p', values.port ?? config.port, '-b', String(values.baud ?? config.baud));
  return args;
}

/** Runs (or, with --print, shows) the CLI and exits with its status. */
export function runCli(values, args, show = args) {
  if (values.print) {
    console.log(['espruino', ...show].join(' '));
    return 0;
  }
  return spawnSync(process.execPath, [cli, ...args], { stdio: 'inherit' }).status ?? 1;
}

/** Runs main, turning a thrown error into one line and exit status 1. */
export function runMain(name, main) {
  try {
    process.exitCode = main();
  } catch (err) {
    console.error(`${name}: ${err.message}`);
    process.exitCode = 1;
  }
}
