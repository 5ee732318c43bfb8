// The built bundle on a real Espruino interpreter (ESPRUINO names the binary): written to Storage, required
// from there, a report written; prints JsVars used and encode time. Skipped without ESPRUINO.
import test from 'ava';
import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { tmpdir } from 'node:os';

const bin = process.env.ESPRUINO;
const run = bin ? test : test.skip;
if (!bin) console.log('metrics core on Espruino: skipped (set ESPRUINO to an Espruino interpreter binary)');

run('bundle loads from Storage and writes a report on Espruino', (t) => {
  const code = readFileSync(join(import.meta.dirname, '..', '..', 'build', 'defender.js'), 'utf8');
  const dir = mkdtempSync(join(tmpdir(), 'espdef-'));
  const script = join(dir, 'main.js');
  writeFileSync(
    script,
    `require("Storage").write("defender", ${JSON.stringify(code)});
var m0 = process.memory().usage;
var d = require("defender");
var buf = new Uint8Array(512);
var t0 = getTime();
var n = d.writeReport(buf, false, false, 0x1ff, 1718000000123, null);
var dt = (getTime() - t0) * 1000;
console.log("RESULT " + n + " " + (process.memory().usage - m0) + " " + dt.toFixed(1));
`,
  );
  const r = spawnSync(bin!, [script], { encoding: 'utf8', timeout: 60000, input: '' });
  const m = /RESULT (-?\d+) (\d+) ([\d.]+)/.exec(r.stdout);
  t.truthy(m, r.stdout + r.stderr);
  t.true(Number(m![1]) > 0);
  t.log(`JsVars after require: ${m![2]}, encode ${m![3]} ms`);
});
