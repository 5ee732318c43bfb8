// Loads build/defender.js as the CommonJS module it is. Plain require() of it fails here: the repository's
// package.json says "type": "module" and build/ has no package.json of its own, so Node takes it for ESM.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const file = join(import.meta.dirname, '..', '..', 'build', 'defender.js');

export function loadBundle(): any {
  const module = { exports: {} as any };
  const fn = new Function('module', 'exports', 'require', readFileSync(file, 'utf8'));
  fn(module, module.exports, createRequire(file));
  return module.exports;
}
