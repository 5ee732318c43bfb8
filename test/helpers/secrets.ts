import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A PEM block whose body is `content` (base64 of it). */
const pem = (label: string, content: string) => `-----BEGIN ${label}-----\n${Buffer.from(content).toString('base64')}\n-----END ${label}-----\n`;

/** Known secret values in files, as a user would have them (PEM), and what Storage must get (DER: the bodies). */
export function secrets() {
  const dir = mkdtempSync(join(tmpdir(), 'secrets-'));
  const der = { cert: 'SECRET-CERT-1f2e3d', key: 'SECRET-KEY-9a8b7c', ca: 'SECRET-CA-5d4c3b' };
  const value = {
    cert: pem('CERTIFICATE', der.cert),
    key: pem('RSA PRIVATE KEY', der.key),
    ca: pem('CERTIFICATE', der.ca),
    password: 'SECRET-WIFI-é-6e5f',
  };
  for (const k of ['cert', 'key', 'ca'] as const) writeFileSync(join(dir, k), value[k]);
  const args = ['--cert', join(dir, 'cert'), '--key', join(dir, 'key'), '--ca', join(dir, 'ca'), '--wifi-password', value.password];
  return { value, der, args };
}
