#!/usr/bin/env node
// `npm run upload`: writes build/tinymqtt.js and build/defender.js to the board's Storage, then
// build/firmware.js as its boot code (.bootcde), and starts it. Then reads back the size and CRC32 of each of the
// three files from the board: the exit status is 0 only when all three match what was sent.
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { root, connectionFlags, parseCommandLine, connectionArgs, portOf, runCli, notReached, expectation, readBack, runMain } from './espruino-cli.mjs';

/** Storage modules the firmware requires, in upload order. */
export const storageModules = ['tinymqtt', 'defender'];

const flags = {
  output: { type: 'string', short: 'o', value: 'FILE', help: 'no board: write what would be sent to FILE' },
  ...connectionFlags,
};

async function main() {
  const parsed = parseCommandLine(process.argv.slice(2), 'npm run upload -- [flags]', 'Writes the built modules and the firmware to the board, then reads them back to check.', flags);
  if (!parsed) return 0;
  const { values, config } = parsed;
  const missing = ['firmware', ...storageModules].find((n) => !existsSync(join(root, 'build', n + '.js')));
  if (missing) throw new Error(`build/${missing}.js is missing; run \`npm run build\` first`);
  // SAVE_ON_SEND=1: the firmware goes to Storage as .bootcde, runs from flash (less RAM) and again at every boot.
  // --sleep: the CLI stays connected a few seconds after the upload, so that the firmware's first lines (loading its
  // modules from Storage takes a while) are shown; otherwise it leaves after half a second of silence.
  const args = [...connectionArgs(values, config, values.output && resolve(values.output)), '--config', 'SAVE_ON_SEND=1'];
  if (!values.output) args.push('--sleep', '3');
  for (const name of storageModules) args.push('--storage', `${name}:${join(root, 'build', name + '.js')}`);
  args.push(join(root, 'build', 'firmware.js'));
  if (values.print) return console.log(['espruino', ...args].join(' ')), 0;

  const port = portOf(values, config);
  const run = await runCli(args);
  if (values.output) return run.status ?? 1;
  const why = notReached(run);
  if (why) throw new Error(`the board on ${port} did not answer (${why}); nothing was written`);
  const sent = Object.fromEntries([...storageModules, 'firmware'].map((n) => [n === 'firmware' ? '.bootcde' : n, readFileSync(join(root, 'build', n + '.js'))]));
  const expected = expectation(sent);
  const differs = await readBack(values, config, expected, { withCrc: true });
  if (differs) throw new Error(`read back from ${port}, the board's Storage differs from what was sent: ${differs}`);
  console.log(`upload: verified on ${port}: ${expected.map((e) => `${e.name} ${e.size} bytes`).join(', ')} (sizes and CRC32 read back)`);
  return 0;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) runMain('upload', main);
