#!/usr/bin/env node
// Uploads to a board with the espruino CLI: writes build/tinymqtt.js and build/defender.js to
// Storage, then build/firmware.js as the boot code (.bootcde), and starts it. Port, baud and board come from espruino.config.json;
// --port, --baud and --board override them. --output FILE writes what would be sent to FILE
// instead (no board needed). --print shows the CLI command and exits.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { loadConfig } from './config.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(root, 'node_modules', 'espruino', 'bin', 'espruino-cli.js');

/** Storage modules the firmware requires, in upload order. */
export const storageModules = ['tinymqtt', 'defender'];

/** The board JSON to give the CLI: a file of ours for a known board name, so that it works
 * offline and does not try to download the Storage modules from the online module library. */
function boardArg(board) {
  if (board.endsWith('.json')) return resolve(board);
  const local = join(root, 'tools', 'boards', board + '.json');
  return existsSync(local) ? local : board;
}

/** The espruino CLI arguments for an upload. */
export function uploadArgs({ port, baud, board, output, extra = [] }) {
  // SAVE_ON_SEND=1: the firmware goes to Storage as .bootcde, runs from flash (less RAM) and again at every boot.
  const args = ['--no-ble', '--config', 'MODULE_URL=', '--config', 'SAVE_ON_SEND=1', '--board', boardArg(board)];
  if (output) args.push('-n', '-o', resolve(output));
  else args.push('-p', port, '-b', String(baud));
  for (const name of storageModules) args.push('--storage', `${name}:${join(root, 'build', name + '.js')}`);
  args.push(...extra, join(root, 'build', 'firmware.js'));
  return args;
}

function main() {
  const { values } = parseArgs({
    options: {
      port: { type: 'string' },
      baud: { type: 'string' },
      board: { type: 'string' },
      config: { type: 'string' },
      output: { type: 'string', short: 'o' },
      print: { type: 'boolean' },
    },
  });
  const config = loadConfig(values.config ? resolve(values.config) : undefined);
  const missing = ['firmware', ...storageModules].filter((n) => !existsSync(join(root, 'build', n + '.js')));
  if (missing.length) {
    console.error(`upload: build/${missing[0]}.js is missing; run \`npm run build\` first`);
    process.exit(1);
  }
  const args = uploadArgs({
    port: values.port ?? config.port,
    baud: values.baud ?? config.baud,
    board: values.board ?? config.board,
    output: values.output,
  });
  if (values.print) {
    console.log(['espruino', ...args].join(' '));
    return;
  }
  const r = spawnSync(process.execPath, [cli, ...args], { stdio: 'inherit' });
  process.exit(r.status ?? 1);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  try {
    main();
  } catch (err) {
    console.error('upload: ' + err.message);
    process.exit(1);
  }
}
