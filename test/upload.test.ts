import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
const upload = join(root, 'tools', 'upload.mjs');

test('offline upload writes both modules to Storage and then sends the firmware', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'upload-'));
  const out = join(dir, 'sent.js');
  const r = spawnSync(process.execPath, [upload, '--output', out], { cwd: root, encoding: 'utf8' });
  t.is(r.status, 0, r.stderr + r.stdout);
  // Nothing that would alarm a user: no failed module download.
  t.notRegex(r.stdout + r.stderr, /not found|getURL|error/i);
  const sent = readFileSync(out, 'utf8');
  for (const name of ['tinymqtt', 'defender']) {
    // The CLI writes a file in chunks: the first gives the whole size, the rest their offsets.
    const chunks = [...sent.matchAll(new RegExp(`require\\("Storage"\\)\\.write\\("${name}",atob\\("([^"]*)"\\),(\\d+)`, 'g'))];
    t.true(chunks.length > 0, `no Storage write for ${name}`);
    const file = Buffer.alloc(chunks.reduce((n, c) => n + Buffer.from(c[1], 'base64').length, 0));
    for (const c of chunks) Buffer.from(c[1], 'base64').copy(file, Number(c[2]));
    t.is(file.toString('utf8'), readFileSync(join(root, 'build', name + '.js'), 'utf8'));
  }
  const firmware = readFileSync(join(root, 'build', 'firmware.js'), 'utf8').trim();
  t.true(sent.lastIndexOf('require("Storage").write') < sent.indexOf(firmware), 'firmware must come after the Storage writes');
});

test('command-line flags override the port, baud and board of espruino.config.json', (t) => {
  const base = execFileSync(process.execPath, [upload, '--print'], { cwd: root, encoding: 'utf8' });
  const config = JSON.parse(readFileSync(join(root, 'espruino.config.json'), 'utf8'));
  t.true(base.includes(`-p ${config.port} -b ${config.baud}`));
  const over = execFileSync(process.execPath, [upload, '--print', '--port', 'tcp://127.0.0.1:2323', '--baud', '9600', '--board', 'PICO'], {
    cwd: root,
    encoding: 'utf8',
  });
  t.true(over.includes('-p tcp://127.0.0.1:2323 -b 9600'));
  t.true(over.includes('--board PICO'));
});

test('a bad config stops the upload and names the field', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'upload-'));
  const config = JSON.parse(readFileSync(join(root, 'espruino.config.json'), 'utf8'));
  config.baud = 'fast';
  writeFileSync(join(dir, 'bad.json'), JSON.stringify(config));
  const r = spawnSync(process.execPath, [upload, '--print', '--config', join(dir, 'bad.json')], { cwd: root, encoding: 'utf8' });
  t.not(r.status, 0);
  t.regex(r.stderr, /field baud must be integer/);
});
