// `npm run upload` without a board: what it would send, its flags, and that every way of not reaching a board
// (no such serial device, a refused TCP port, a board that never answers) ends with one line and a failing exit status.
// The read-back against a real Espruino is in espruino-upload.test.ts.
import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runTool, silentBoard, closedPort } from './helpers/board.ts';

const root = join(import.meta.dirname, '..');
const upload = join(root, 'tools', 'upload.mjs');

const lastLine = (s: string) => s.trim().split('\n').pop() ?? '';

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
  t.is(r.stderr, 'upload: bad.json: field baud must be a whole number, not "fast"\n');
});

test('no board on the serial port: one line, failing exit status', async (t) => {
  const r = await runTool(upload, ['--port', '/dev/tty-espruino-defender-none']);
  t.is(r.status, 1, r.stdout + r.stderr);
  t.is(lastLine(r.stderr), 'upload: the board on /dev/tty-espruino-defender-none did not answer (Unable to connect); nothing was written');
});

test('a refused TCP port: one line, failing exit status', async (t) => {
  const port = await closedPort();
  const r = await runTool(upload, ['--port', `tcp://127.0.0.1:${port}`]);
  t.is(r.status, 1, r.stdout + r.stderr);
  t.is(lastLine(r.stderr), `upload: the board on tcp://127.0.0.1:${port} did not answer (ECONNREFUSED 127.0.0.1:${port}); nothing was written`);
});

test('a port that takes the whole upload and never answers: the read-back fails the upload', async (t) => {
  const board = await silentBoard();
  t.teardown(board.close);
  const r = await runTool(upload, ['--port', `tcp://127.0.0.1:${board.port}`]);
  t.true(board.received() > readFileSync(join(root, 'build', 'defender.js')).length, 'the upload was sent');
  t.is(r.status, 1, r.stdout + r.stderr);
  t.is(lastLine(r.stderr), `upload: the board on tcp://127.0.0.1:${board.port} did not answer`);
  t.notRegex(r.stdout, /verified/);
});

test('--help lists every flag, and a flag error is one line with exit status 2', (t) => {
  const help = execFileSync(process.execPath, [upload, '--help'], { cwd: root, encoding: 'utf8' });
  const listed = [...help.matchAll(/^\s+(?:-\w, )?(--[\w-]+)/gm)].map((m) => m[1]);
  t.deepEqual(listed.sort(), ['--baud', '--board', '--config', '--help', '--output', '--port', '--print']);
  for (const flag of listed.filter((f) => f !== '--help')) {
    // each flag it lists is one the parser takes: no "unknown flag"
    const r = spawnSync(process.execPath, [upload, flag, ...(/print/.test(flag) ? [] : ['x']), '--help'], { cwd: root, encoding: 'utf8' });
    t.notRegex(r.stderr, /unknown flag/, flag);
  }
  const bad = spawnSync(process.execPath, [upload, '--prot', 'x'], { cwd: root, encoding: 'utf8' });
  t.is(bad.status, 2);
  t.is(bad.stderr, 'upload: unknown flag --prot (--help lists the flags)\n');
});
