// espruino.config.json errors, as `npm run build`, `upload` and `provision` show them: one line that names the field,
// what it may be (from the schema) and what it is.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const base = JSON.parse(readFileSync(join(root, 'espruino.config.json'), 'utf8'));

function errorFor(change: (c: any) => void): string {
  const c = structuredClone(base);
  change(c);
  const file = join(mkdtempSync(join(tmpdir(), 'config-')), 'espruino.config.json');
  writeFileSync(file, JSON.stringify(c));
  const r = spawnSync(process.execPath, [join(root, 'tools', 'upload.mjs'), '--print', '--config', file], { cwd: root, encoding: 'utf8' });
  return r.status === 0 ? '(accepted)' : r.stderr;
}

const cases: [string, (c: any) => void, string][] = [
  ['a wrong format names the allowed values', (c) => (c.format = 'xml'), 'field format must be one of "cbor", "json", not "xml"'],
  ['a missing endpoint is named, with what it is', (c) => delete c.endpoint, 'field endpoint is missing (AWS IoT data endpoint, a host name: aws iot describe-endpoint --endpoint-type iot:Data-ATS)'],
  ['a number out of range gives the range', (c) => (c.slots = 0), 'field slots must be from 1 to 64, not 0'],
  ['a period under minPeriod names both', (c) => (c.period = 100), 'field period must be from minPeriod (300) to 86400, not 100'],
  ['a pattern is said in words', (c) => (c.thingName = 'my thing'), `field thingName must be 1 to 128 of the letters a-z and A-Z, digits, ':', '_' and '-', not "my thing"`],
  ['an unknown field lists the settings', (c) => (c.wifi.pass = 'x'), 'field wifi.pass is not a setting; the settings here are ssid, passwordFile'],
  ['a wrong type says the type', (c) => (c.longTags = 'yes'), 'field longTags must be true or false, not "yes"'],
];
for (const [title, change, message] of cases) {
  test(title, (t) => {
    t.is(errorFor(change), `upload: espruino.config.json: ${message}\n`);
  });
}
