// Secrets as a user would have them: a device certificate and its RSA key signed by a test CA (PEM files, made
// with openssl by certs.ts), a Wi-Fi password, and what Storage must get for each (DER for the PKI files).
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { makePki, der, type Pki } from './certs.ts';

let pki: Pki | undefined;

export function secrets() {
  pki ??= makePki();
  const password = 'SECRET-WIFI-é-6e5f';
  const files = { cert: pki.clientCertFile, key: pki.clientKeyFile, ca: pki.caFile, password: join(pki.dir, 'wifi.txt') };
  writeFileSync(files.password, password + '\n', { mode: 0o600 });
  return {
    pki,
    files,
    value: { cert: pki.clientCert, key: pki.clientKey, ca: pki.ca, password },
    der: { cert: der(pki.clientCert), key: der(pki.clientKey), ca: der(pki.ca) },
    /** Every secret, the password from WIFI_PASSWORD (see `env`). */
    args: ['--cert', files.cert, '--key', files.key, '--ca', files.ca, '--wifi-password'],
    env: { ...process.env, WIFI_PASSWORD: password },
  };
}
