// `npm run provision` without a board: what it writes, that secrets stay secret (never on a command line, never
// printed, --output mode 0600), that it refuses wrong or mismatched PKI files before writing anything, and that not
// reaching a board fails. Provisioning a real Espruino is in espruino-upload.test.ts.
import test from 'ava';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from '../tools/build.mjs';
import { secrets } from './helpers/secrets.ts';
import { runTool, silentBoard } from './helpers/board.ts';

const root = join(import.meta.dirname, '..');
const provision = join(root, 'tools', 'provision.mjs');
const scratchFile = (name: string) => join(mkdtempSync(join(tmpdir(), 'provision-')), name);

/** What a CLI output file writes to each Storage file (the CLI writes in chunks). */
function storageWrites(sent: string): Record<string, Buffer> {
  const files: Record<string, Buffer[]> = {};
  for (const m of sent.matchAll(/require\("Storage"\)\.write\("([^"]+)",atob\("([^"]*)"\)/g)) (files[m[1]] ??= []).push(Buffer.from(m[2], 'base64'));
  return Object.fromEntries(Object.entries(files).map(([k, v]) => [k, Buffer.concat(v)]));
}

function run(args: string[], env: NodeJS.ProcessEnv = process.env) {
  return spawnSync(process.execPath, [provision, ...args], { cwd: root, encoding: 'utf8', env });
}

test('provision writes each secret to its Storage file and nothing else, certificates and key as DER', (t) => {
  const { value, der, args, env } = secrets();
  const out = scratchFile('sent.js');
  const r = run([...args, '--output', out], env);
  t.is(r.status, 0, r.stderr + r.stdout);
  const files = storageWrites(readFileSync(out, 'utf8'));
  t.deepEqual(Object.keys(files).sort(), ['ca.crt', 'device.crt', 'device.key', 'wifi.pass']);
  t.is(files['device.crt'].toString('latin1'), der.cert);
  t.is(files['device.key'].toString('latin1'), der.key);
  t.is(files['ca.crt'].toString('latin1'), der.ca);
  t.is(files['wifi.pass'].toString('utf8'), value.password);
  t.notRegex(r.stdout + r.stderr, /SECRET-WIFI/);
});

test('--output: the file holding the secrets is mode 0600, even one that existed with 0644', (t) => {
  const { args, env } = secrets();
  for (const existed of [false, true]) {
    const out = scratchFile('sent.js');
    if (existed) {
      writeFileSync(out, 'old');
      chmodSync(out, 0o644);
    }
    const r = run([...args, '--output', out], env);
    t.is(r.status, 0, r.stderr);
    t.is(statSync(out).mode & 0o777, 0o600, existed ? 'existing file' : 'new file');
    t.regex(r.stdout, /mode 0600/);
  }
});

test('the README form through npm: the password appears on no command line and in no output', (t) => {
  const { args, env, value } = secrets();
  const out = scratchFile('sent.js');
  const r = spawnSync('npm', ['run', 'provision', '--', ...args, '--output', out], { cwd: root, encoding: 'utf8', env });
  t.is(r.status, 0, r.stderr);
  t.regex(r.stdout, /> node tools\/provision\.mjs --cert/, 'npm shows its command line');
  t.false((r.stdout + r.stderr).includes(value.password));
  t.is(storageWrites(readFileSync(out, 'utf8'))['wifi.pass'].toString('utf8'), value.password);
});

test('a password given on the command line is refused without repeating it, and nothing is written', (t) => {
  const { files } = secrets();
  const out = scratchFile('sent.js');
  for (const form of [['--wifi-password', 'hunter2-secret'], ['--wifi-password=hunter2-secret']]) {
    const r = run(['--cert', files.cert, ...form, '--output', out]);
    t.is(r.status, 2);
    t.regex(r.stderr, /^provision: --wifi-password takes no value: a password on the command line is shown by npm/);
    t.false((r.stdout + r.stderr).includes('hunter2'));
    t.false(existsSync(out));
  }
});

test('the password from a file, or from WIFI_PASSWORD', (t) => {
  const { files, value } = secrets();
  const fromFile = scratchFile('a.js');
  t.is(run(['--wifi-password-file', files.password, '--output', fromFile]).status, 0);
  t.is(storageWrites(readFileSync(fromFile, 'utf8'))['wifi.pass'].toString('utf8'), value.password, 'first line, no newline');
  const fromEnv = scratchFile('b.js');
  t.is(run(['--wifi-password', '--output', fromEnv], { ...process.env, WIFI_PASSWORD: 'env-pass-123' }).status, 0);
  t.is(storageWrites(readFileSync(fromEnv, 'utf8'))['wifi.pass'].toString('utf8'), 'env-pass-123');
  // No terminal and no WIFI_PASSWORD: a clear refusal, not a hang.
  const none = run(['--wifi-password', '--output', scratchFile('c.js')], { ...process.env, WIFI_PASSWORD: '' });
  t.is(none.status, 2);
  t.regex(none.stderr, /WIFI_PASSWORD is not set and there is no terminal to ask on/);
});

test('in a terminal it asks for the password and does not echo it', async (t) => {
  const out = scratchFile('sent.js');
  // script(1) gives the program a pseudo-terminal, whose echo would show the typed password in the transcript.
  const child = spawn('script', ['-qec', `${process.execPath} ${provision} --wifi-password --output ${out}`, '/dev/null'], {
    cwd: root,
    env: { ...process.env, WIFI_PASSWORD: '' },
  });
  let transcript = '';
  child.stdout.on('data', (d) => (transcript += d));
  child.stderr.on('data', (d) => (transcript += d));
  const exited = new Promise<number | null>((r) => child.on('close', r));
  const deadline = Date.now() + 90000; // the prompt comes once node has started, slow on a loaded machine
  while (!transcript.includes('Wi-Fi password:') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  t.true(transcript.includes('Wi-Fi password:'), transcript);
  child.stdin.write('typed-secret-77\r');
  t.is(await exited, 0, transcript);
  t.false(transcript.includes('typed-secret-77'), transcript);
  t.is(storageWrites(readFileSync(out, 'utf8'))['wifi.pass'].toString('utf8'), 'typed-secret-77');
});

test('a private key given as --cert, or a certificate as --key, is refused and nothing is written', (t) => {
  const { files } = secrets();
  const out = scratchFile('sent.js');
  const asCert = run(['--cert', files.key, '--output', out]);
  t.is(asCert.status, 1);
  t.is(asCert.stderr, `provision: --cert ${files.key}: holds a PRIVATE KEY, not a certificate (give it as --key)\n`);
  const asKey = run(['--key', files.cert, '--output', out]);
  t.is(asKey.status, 1);
  t.is(asKey.stderr, `provision: --key ${files.cert}: holds a CERTIFICATE, not a private key (give it as --cert or --ca)\n`);
  // The same in DER, where there is no PEM label to go by.
  const derKey = scratchFile('key.der');
  execFileSync('openssl', ['pkey', '-in', files.key, '-outform', 'DER', '-out', derKey]);
  t.regex(run(['--ca', derKey, '--output', out]).stderr, /--ca .*: a private key, not a certificate \(give it as --key\)/);
  t.false(existsSync(out));
});

test('a certificate and a key that are not a pair, and a CA that did not sign the certificate, are refused', (t) => {
  const { files, pki } = secrets();
  const out = scratchFile('sent.js');
  const notPair = run(['--cert', files.cert, '--key', pki.serverKeyFile, '--output', out]);
  t.is(notPair.status, 1);
  t.is(notPair.stderr, 'provision: --cert and --key are not a pair: the certificate holds another public key\n');
  // Another CA of the same name (so it claims to be the issuer), with its own key.
  const dir = mkdtempSync(join(tmpdir(), 'other-ca-'));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=espruino-defender test CA'], { cwd: dir, stdio: 'ignore' });
  const forged = run(['--cert', files.cert, '--ca', join(dir, 'ca.crt'), '--output', out]);
  t.is(forged.status, 1);
  t.is(forged.stderr, 'provision: --ca is named as the issuer of --cert but did not sign it: its signature does not verify\n');
  const notCa = run(['--cert', files.cert, '--ca', pki.serverCertFile, '--output', out]);
  t.is(notCa.stderr, 'provision: --ca: CN=localhost is not a CA certificate\n');
  t.false(existsSync(out));
  // The right files pass every check.
  t.is(run(['--cert', files.cert, '--key', files.key, '--ca', files.ca, '--output', out]).status, 0);
});

test('provision refuses a file that is neither PEM nor DER, and a missing file', (t) => {
  const file = scratchFile('cert.txt');
  writeFileSync(file, 'not a certificate');
  const r = run(['--cert', file, '--print']);
  t.is(r.status, 1);
  t.regex(r.stderr, /cert\.txt: neither a PEM nor a DER certificate/);
  const missing = run(['--cert', '/nonexistent/cert.pem', '--print']);
  t.is(missing.status, 1);
  t.regex(missing.stderr, /cert\.pem: no such file/);
});

test('no board: one line and a failing exit status, with no board on the port or a board that never answers', async (t) => {
  const { args, env } = secrets();
  const none = await runTool(provision, [...args, '--port', '/dev/tty-espruino-defender-none'], env);
  t.is(none.status, 1);
  t.is(none.stderr.trim().split('\n').pop(), 'provision: the board on /dev/tty-espruino-defender-none did not answer (Unable to connect); nothing was written');
  const board = await silentBoard();
  t.teardown(board.close);
  const silent = await runTool(provision, [...args, '--port', `tcp://127.0.0.1:${board.port}`], env);
  t.is(silent.status, 1);
  t.is(silent.stderr.trim().split('\n').pop(), `provision: the board on tcp://127.0.0.1:${board.port} did not answer`);
  t.notRegex(silent.stdout, /verified/);
});

test('--help lists every flag', (t) => {
  const help = execFileSync(process.execPath, [provision, '--help'], { cwd: root, encoding: 'utf8' });
  const listed = [...help.matchAll(/^\s+(?:-\w, )?(--[\w-]+)/gm)].map((m) => m[1]);
  t.deepEqual(listed.sort(), ['--baud', '--board', '--ca', '--cert', '--config', '--help', '--key', '--output', '--port', '--print', '--wifi-password', '--wifi-password-file']);
});

test('no secret reaches any file under build/', async (t) => {
  const { der, value, args, env } = secrets();
  t.is(run([...args, '--output', scratchFile('sent.js')], env).status, 0);
  const dir = mkdtempSync(join(tmpdir(), 'build-'));
  await build({ out: dir, quiet: true });
  const needles = [value.password, ...Object.values(der).map((v) => Buffer.from(v, 'latin1').toString('base64').slice(0, 64))];
  for (const dirToCheck of [dir, join(root, 'build')]) {
    for (const f of readdirSync(dirToCheck, { recursive: true, encoding: 'utf8' })) {
      if (!statSync(join(dirToCheck, f)).isFile()) continue; // build/web/ holds the dashboard page
      const text = readFileSync(join(dirToCheck, f), 'latin1');
      for (const s of needles) t.false(text.includes(s), `a secret in ${f}`);
    }
  }
});
