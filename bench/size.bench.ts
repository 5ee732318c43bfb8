// Bundle sizes: minified bytes and gzip bytes of each built file (gzip as a rough guide to
// how much real content there is; the board stores the minified text as is).
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { join } from 'node:path';

const targets: Record<string, number> = { tinymqtt: 2560, defender: 8192 };
const rows = ['tinymqtt', 'defender', 'firmware'].map((name) => {
  const code = readFileSync(join(import.meta.dirname, '..', 'build', name + '.js'));
  const target = targets[name];
  return {
    file: `build/${name}.js`,
    bytes: code.length,
    gzip: gzipSync(code, { level: 9 }).length,
    target: target ? `<= ${target}` : '',
    'of target': target ? `${((code.length / target) * 100).toFixed(0)}%` : '',
  };
});
console.table(rows);
