#!/usr/bin/env node
// `npm run provision -- --cert device.pem.crt --key private.pem.key --ca AmazonRootCA1.pem --wifi-password`
// writes the device's secrets to the board's Storage, under the file names of espruino.config.json, through the
// espruino CLI, then reads back the size of each file it wrote. Any subset may be given.
// Secrets never go on a command line (npm prints its scripts' command lines): the Wi-Fi password comes from
// $WIFI_PASSWORD, a prompt that does not echo, or a file. Nothing is written before every file has been checked
// with node:crypto: a certificate is a certificate and a key a key, the two are a pair, and a CA that is named as the
// certificate's issuer did sign it.
// Certificates and the key are stored as DER (the base64 body of the PEM block, decoded): Espruino's tls takes
// DER, not PEM, and the firmware passes what Storage.read returns, which stays in flash.
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { read } from 'read';
import { UsageError } from './args.mjs';
import { connectionFlags, parseCommandLine, connectionArgs, portOf, runCli, notReached, expectation, readBack, runMain } from './espruino-cli.mjs';

const flags = {
  cert: { type: 'string', value: 'FILE', help: 'device certificate, PEM or DER' },
  key: { type: 'string', value: 'FILE', help: 'device private key, PEM or DER, unencrypted' },
  ca: { type: 'string', value: 'FILE', help: 'CA certificate that verifies the endpoint (AWS IoT: AmazonRootCA1.pem), PEM or DER' },
  'wifi-password': {
    type: 'boolean',
    help: 'write the Wi-Fi password: from $WIFI_PASSWORD when set, else asked at a prompt that does not echo',
    noValue: 'a password on the command line is shown by npm and kept in shell history; use WIFI_PASSWORD=..., the prompt or --wifi-password-file FILE',
  },
  'wifi-password-file': { type: 'string', value: 'FILE', help: 'write the Wi-Fi password held in FILE (its first line)' },
  output: { type: 'string', short: 'o', value: 'FILE', help: 'no board: write what would be sent to FILE, mode 0600 (it holds the secrets)' },
  ...connectionFlags,
};

const PEM = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/g;
const KEY_TYPES = ['pkcs8', 'pkcs1', 'sec1'];

function asCertificate(der) {
  try {
    return new X509Certificate(der);
  } catch {
    return undefined;
  }
}

function asPrivateKey(der) {
  for (const type of KEY_TYPES) {
    try {
      return createPrivateKey({ key: der, format: 'der', type });
    } catch {
      // not this encoding: try the next
    }
  }
  return undefined;
}

/** Reads the file of `--flag`, which must hold a `want` ('certificate' or 'private key'): its DER and parsed form. */
function load(flag, file, want) {
  let bytes;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    throw new Error(`--${flag} ${file}: ${err.code === 'ENOENT' ? 'no such file' : err.message}`);
  }
  const other = want === 'certificate' ? 'give it as --key' : 'give it as --cert or --ca';
  const blocks = [...bytes.toString('latin1').matchAll(PEM)].map((m) => ({ label: m[1], der: Buffer.from(m[2].replace(/\s+/g, ''), 'base64') }));
  let der;
  if (blocks.length) {
    const mine = blocks.find((b) => (want === 'certificate' ? b.label === 'CERTIFICATE' : / ?PRIVATE KEY$/.test(b.label)));
    if (!mine) {
      const isKey = blocks.some((b) => /PRIVATE KEY$/.test(b.label));
      throw new Error(`--${flag} ${file}: holds a ${blocks[0].label}, not a ${want}${(isKey && want === 'certificate') || (blocks.some((b) => b.label === 'CERTIFICATE') && want !== 'certificate') ? ` (${other})` : ''}`);
    }
    if (mine.label.startsWith('ENCRYPTED')) throw new Error(`--${flag} ${file}: the private key is encrypted; the board needs it in clear (openssl pkey -in FILE -out PLAIN)`);
    der = mine.der;
  } else if (bytes[0] === 0x30) {
    der = bytes; // an ASN.1 SEQUENCE: DER already
  } else {
    throw new Error(`--${flag} ${file}: neither a PEM nor a DER ${want}`);
  }
  const parsed = want === 'certificate' ? asCertificate(der) : asPrivateKey(der);
  if (!parsed) {
    const swapped = want === 'certificate' ? asPrivateKey(der) : asCertificate(der);
    throw new Error(`--${flag} ${file}: ${swapped ? `a ${want === 'certificate' ? 'private key' : 'certificate'}, not a ${want} (${other})` : `not a valid ${want}`}`);
  }
  return { der, parsed };
}

/** The checks between the files, before anything is written. Returns notes to print (not errors). */
function checkTogether(cert, key, ca) {
  const notes = [];
  if (cert && key && !cert.parsed.checkPrivateKey(key.parsed)) throw new Error('--cert and --key are not a pair: the certificate holds another public key');
  if (ca && !ca.parsed.ca) throw new Error(`--ca: ${ca.parsed.subject.replace(/\n/g, ', ')} is not a CA certificate`);
  if (cert && ca) {
    // By name: checkIssued would also compare key identifiers, and call a same-named CA with another key unrelated.
    if (cert.parsed.issuer === ca.parsed.subject) {
      if (!cert.parsed.verify(ca.parsed.publicKey)) throw new Error('--ca is named as the issuer of --cert but did not sign it: its signature does not verify');
    } else {
      // AWS IoT: the CA verifies the endpoint, and AWS, not that CA, issued the device certificate.
      notes.push(`--ca did not issue --cert (issuer ${cert.parsed.issuer.replace(/\n/g, ', ')}): right for AWS IoT, where --ca verifies the endpoint`);
    }
  }
  return notes;
}

/** The Wi-Fi password, from the source the flags name; undefined when none is asked for. */
async function wifiPassword(values) {
  let password;
  if (values['wifi-password'] && values['wifi-password-file']) throw new UsageError('give --wifi-password or --wifi-password-file, not both');
  if (values['wifi-password-file']) {
    try {
      password = readFileSync(values['wifi-password-file'], 'utf8').split(/\r?\n/)[0];
    } catch (err) {
      throw new Error(`--wifi-password-file ${values['wifi-password-file']}: ${err.code === 'ENOENT' ? 'no such file' : err.message}`);
    }
  } else if (values['wifi-password']) {
    if (process.env.WIFI_PASSWORD) password = process.env.WIFI_PASSWORD;
    else if (process.stdin.isTTY) password = await read({ prompt: 'Wi-Fi password:', silent: true, replace: '', output: process.stderr });
    else throw new UsageError('--wifi-password: WIFI_PASSWORD is not set and there is no terminal to ask on; set it or use --wifi-password-file FILE');
  } else return undefined;
  if (!password) throw new UsageError('the Wi-Fi password is empty');
  return password;
}

async function main() {
  const parsed = parseCommandLine(process.argv.slice(2), 'npm run provision -- [flags]', 'Writes the device certificate, its key, the CA and the Wi-Fi password to the board, checks them first and reads them back.', flags);
  if (!parsed) return 0;
  const { values, config } = parsed;
  const cert = values.cert && load('cert', values.cert, 'certificate');
  const key = values.key && load('key', values.key, 'private key');
  const ca = values.ca && load('ca', values.ca, 'certificate');
  const notes = checkTogether(cert, key, ca);
  const password = await wifiPassword(values);
  const secrets = {};
  if (cert) secrets[config.tls.certFile] = cert.der;
  if (key) secrets[config.tls.keyFile] = key.der;
  if (ca) secrets[config.tls.caFile] = ca.der;
  if (password !== undefined) secrets[config.wifi.passwordFile] = Buffer.from(password, 'utf8');
  const names = Object.keys(secrets);
  if (!names.length) throw new UsageError('nothing to write: give --cert, --key, --ca and/or --wifi-password (--help lists the flags)');
  for (const note of notes) console.log(`provision: note: ${note}`);

  // The secrets reach the CLI through files in a private folder (mode 0700), removed afterwards; so does its
  // --output, copied to the user's file with mode 0600.
  const dir = mkdtempSync(join(tmpdir(), 'provision-'));
  try {
    const output = values.output && join(dir, 'output.js');
    const args = [...connectionArgs(values, config, output)];
    names.forEach((name, i) => {
      const file = join(dir, 'secret' + i);
      writeFileSync(file, secrets[name], { mode: 0o600 });
      args.push('--storage', `${name}:${file}`);
    });
    // An expression and no file: the CLI writes Storage without resetting the board.
    args.push('-e', `print("espruino-defender: provisioned " + ${JSON.stringify(names.join(', '))})`);
    if (values.print) return console.log(['espruino', ...args.map((a) => a.replace(dir, '<private folder>'))].join(' ')), 0;
    const run = await runCli(args);
    if (output) {
      const target = resolve(values.output);
      writeFileSync(target, '', { mode: 0o600 });
      chmodSync(target, 0o600); // an existing file keeps its mode through writeFileSync
      writeFileSync(target, readFileSync(output));
      console.log(`provision: wrote ${values.output} (mode 0600: it holds the secrets)`);
      return run.status ?? 1;
    }
    const port = portOf(values, config);
    const why = notReached(run);
    if (why) throw new Error(`the board on ${port} did not answer (${why}); nothing was written`);
    const differs = await readBack(values, config, expectation(secrets), { withCrc: false, secret: true });
    if (differs) throw new Error(`read back from ${port}, the board's Storage differs from what was sent: ${differs}`);
    console.log(`provision: verified on ${port}: ${names.join(', ')} present with the sizes written`);
    return 0;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) runMain('provision', main);
