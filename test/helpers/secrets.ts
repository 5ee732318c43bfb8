import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Known secret values in files, as a user would have them. */
export function secrets() {
  const dir = mkdtempSync(join(tmpdir(), 'secrets-'));
  const value = {
    cert: '-----BEGIN CERTIFICATE-----\nSECRET-CERT-1f2e3d\n-----END CERTIFICATE-----\n',
    key: '-----BEGIN EC PRIVATE KEY-----\nSECRET-KEY-9a8b7c\n-----END EC PRIVATE KEY-----\n',
    ca: '-----BEGIN CERTIFICATE-----\nSECRET-CA-5d4c3b\n-----END CERTIFICATE-----\n',
    password: 'SECRET-WIFI-é-6e5f',
  };
  for (const k of ['cert', 'key', 'ca'] as const) writeFileSync(join(dir, k), value[k]);
  const args = ['--cert', join(dir, 'cert'), '--key', join(dir, 'key'), '--ca', join(dir, 'ca'), '--wifi-password', value.password];
  return { value, args };
}

