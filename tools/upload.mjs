#!/usr/bin/env node
// `npm run upload`: writes build/tinymqtt.js and build/defender.js to the board's Storage, then
// build/firmware.js as its boot code (.bootcde), and starts it. Options: see espruino-cli.mjs.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { root, parseCommandLine, connectionArgs, runCli, runMain } from './espruino-cli.mjs';

/** Storage modules the firmware requires, in upload order. */
export const storageModules = ['tinymqtt', 'defender'];

function main() {
  const { values, config } = parseCommandLine();
  const missing = ['firmware', ...storageModules].find((n) => !existsSync(join(root, 'build', n + '.js')));
  if (missing) throw new Error(`build/${missing}.js is missing; run \`npm run build\` first`);
  // SAVE_ON_SEND=1: the firmware goes to Storage as .bootcde, runs from flash (less RAM) and again at every boot.
  const args = [...connectionArgs(values, config), '--config', 'SAVE_ON_SEND=1'];
  for (const name of storageModules) args.push('--storage', `${name}:${join(root, 'build', name + '.js')}`);
  args.push(join(root, 'build', 'firmware.js'));
  return runCli(values, args);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) runMain('upload', main);
