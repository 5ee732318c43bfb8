#!/usr/bin/env node
// `npm run provision -- --cert device.pem.crt --key private.pem.key --ca AmazonRootCA1.pem --wifi-password ...`
// writes the device's secrets to the board's Storage, under the file names of espruino.config.json,
// through the espruino CLI. Secrets never go into a bundle or the config. Any subset may be given.
// Certificates and the key are stored as DER (the base64 body of the PEM file, decoded): Espruino's tls takes
// DER, not PEM, and the firmware passes what Storage.read returns, which stays in flash.
// Connection options: see espruino-cli.mjs.
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseCommandLine, connectionArgs, runCli, runMain } from './espruino-cli.mjs';

/** The DER bytes of the first PEM block of a file (a file that is not PEM is taken as DER already). */
function derOf(file) {
  const text = readFileSync(file);
  const pem = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/.exec(text.toString('latin1'));
  if (!pem) {
    if (text[0] === 0x30) return text; // an ASN.1 SEQUENCE: DER already
    throw new Error(`${file}: neither a PEM nor a DER certificate or key`);
  }
  const der = Buffer.from(pem[2].replace(/\s+/g, ''), 'base64');
  if (!der.length) throw new Error(`${file}: empty PEM block`);
  return der;
}

function main() {
  const { values, config } = parseCommandLine({
    cert: { type: 'string' },
    key: { type: 'string' },
    ca: { type: 'string' },
    'wifi-password': { type: 'string' },
  });
  const files = [
    [config.tls.certFile, values.cert],
    [config.tls.keyFile, values.key],
    [config.tls.caFile, values.ca],
  ].filter(([, file]) => file);
  for (const [, file] of files) if (!existsSync(file)) throw new Error(`${file}: no such file`);
  const password = values['wifi-password'];
  if (!files.length && password === undefined) throw new Error('nothing to write: give --cert, --key, --ca and/or --wifi-password');

  // The secrets go through private temporary files, removed afterwards (the password is then not on the CLI's
  // command line either).
  const dir = mkdtempSync(join(tmpdir(), 'provision-'));
  try {
    const storage = files.map(([name, file], i) => {
      const der = join(dir, 'der' + i);
      writeFileSync(der, derOf(resolve(file)), { mode: 0o600 });
      return [name, der];
    });
    if (password !== undefined) {
      const file = join(dir, 'wifi');
      writeFileSync(file, password, { mode: 0o600 });
      chmodSync(file, 0o600);
      storage.push([config.wifi.passwordFile, file]);
    }
    const names = storage.map(([name]) => name);
    const args = [...connectionArgs(values, config)];
    for (const [name, file] of storage) args.push('--storage', `${name}:${file}`);
    // An expression and no file: the CLI writes Storage without resetting the board.
    args.push('-e', `print("espruino-defender: provisioned " + ${JSON.stringify(names.join(', '))})`);
    const show = args.map((a) => (a.startsWith(config.wifi.passwordFile + ':') ? `${config.wifi.passwordFile}:<password>` : a));
    return runCli(values, args, show);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) runMain('provision', main);
