#!/usr/bin/env node
// Builds the dashboard page (web/) with vite into build/web, which the service's HTTP server serves as static
// files. Everything the page needs (uPlot included) is bundled: no CDN, it works offline.
import { build } from 'vite';
import { join } from 'node:path';
import { readdirSync, statSync } from 'node:fs';

const root = join(import.meta.dirname, '..');
const outDir = join(root, 'build', 'web');
await build({
  root: join(root, 'web'),
  base: './',
  logLevel: 'warn',
  build: { outDir, emptyOutDir: true, target: 'es2022', reportCompressedSize: false },
});
const files = readdirSync(join(outDir, 'assets')).map((f) => `${f} ${statSync(join(outDir, 'assets', f)).size} B`);
console.log(`build/web: index.html, ${files.join(', ')}`);
