import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from '../tools/build.mjs';
import { secrets } from './helpers/secrets.ts';

const root = join(import.meta.dirname, '..');
const provision = join(root, 'tools', 'provision.mjs');

/** What a CLI output file writes to each Storage file (the CLI writes in chunks). */
function storageWrites(sent: string): Record<string, Buffer> {
  const files: Record<string, Buffer[]> = {};
  for (const m of sent.matchAll(/require\("Storage"\)\.write\("([^"]+)",atob\("([^"]*)"\)/g)) (files[m[1]] ??= []).push(Buffer.from(m[2], 'base64'));
  return Object.fromEntries(Object.entries(files).map(([k, v]) => [k, Buffer.concat(v)]));
}

test('provision writes each secret to its Storage file and nothing else, certificates and key as DER', (t) => {
  const { value, der, args } = secrets();
  const out = join(mkdtempSync(join(tmpdir(), 'provision-')), 'sent.js');
  const r = spawnSync(process.execPath, [provision, ...args, '--output', out], { cwd: root, encoding: 'utf8' });
  t.is(r.status, 0, r.stderr + r.stdout);
  const files = storageWrites(readFileSync(out, 'utf8'));
  t.deepEqual(Object.keys(files).sort(), ['ca.crt', 'device.crt', 'device.key', 'wifi.pass']);
  t.is(files['device.crt'].toString(), der.cert);
  t.is(files['device.key'].toString(), der.key);
  t.is(files['ca.crt'].toString(), der.ca);
  t.is(files['wifi.pass'].toString(), value.password);
  // The password is not shown on the command line either.
  const shown = spawnSync(process.execPath, [provision, ...args, '--print'], { cwd: root, encoding: 'utf8' });
  t.notRegex(shown.stdout, /SECRET-WIFI/);
});

test('provision refuses a file that is neither PEM nor DER', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'provision-'));
  writeFileSync(join(dir, 'cert.txt'), 'not a certificate');
  const r = spawnSync(process.execPath, [provision, '--cert', join(dir, 'cert.txt'), '--print'], { cwd: root, encoding: 'utf8' });
  t.not(r.status, 0);
  t.regex(r.stderr, /cert\.txt: neither a PEM nor a DER certificate or key/);
});

test('provision refuses a missing certificate file and writes nothing', (t) => {
  const r = spawnSync(process.execPath, [provision, '--cert', '/nonexistent/cert.pem', '--print'], { cwd: root, encoding: 'utf8' });
  t.not(r.status, 0);
  t.regex(r.stderr, /cert\.pem: no such file/);
});

test('no secret reaches any file under build/', async (t) => {
  const { der, args } = secrets();
  const out = join(mkdtempSync(join(tmpdir(), 'provision-')), 'sent.js');
  t.is(spawnSync(process.execPath, [provision, ...args, '--output', out], { cwd: root }).status, 0);
  const dir = mkdtempSync(join(tmpdir(), 'build-'));
  await build({ out: dir, quiet: true });
  for (const dirToCheck of [dir, join(root, 'build')]) {
    for (const f of readdirSync(dirToCheck, { recursive: true, encoding: 'utf8' })) {
      if (!statSync(join(dirToCheck, f)).isFile()) continue; // build/web/ holds the dashboard page
      const text = readFileSync(join(dirToCheck, f), 'latin1');
      for (const s of ['SECRET-CERT', 'SECRET-KEY', 'SECRET-CA', 'SECRET-WIFI', ...Object.values(der).map((v) => Buffer.from(v).toString('base64'))]) {
        t.false(text.includes(s), `${s} in ${f}`);
      }
    }
  }
  t.true(der.cert.includes('SECRET-CERT'));
});
