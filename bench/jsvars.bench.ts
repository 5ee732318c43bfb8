// What code shapes cost in RAM on Espruino, measured on the interpreter named by ESPRUINO (use a
// build with the ESP32 variable layout): each snippet is written to Storage as a module and
// required in a later run, as on a board. Then the same for the two built modules.
// The figures steer how device code is written: see docs/memory.md.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { espruino, scratch, storageWrite, runScript } from '../test/helpers/espruino.ts';

if (!espruino) {
  console.log('jsvars: skipped (set ESPRUINO=/path/to/espruino, ideally a build with the ESP32 variable layout)');
  process.exit(0);
}

const n = 50;
const list = (f: (i: number) => string, sep = ';') => Array.from({ length: n }, (_, i) => f(i)).join(sep);
const shapes: Record<string, string> = {
  'empty module': 'exports.x=1;',
  [`${n} top-level functions, 2 parameters`]: list((i) => `function f${i}(a,b){return a+b+${i}}`) + ';exports.x=f1;',
  [`${n} top-level functions, no parameter`]: list((i) => `function f${i}(){return ${i}}`) + ';exports.x=f1;',
  [`${n} functions nested in one exported function`]: 'exports.x=function(){' + list((i) => `function f${i}(a,b){return a+b+${i}}`) + ';return f1(1,2)};',
  [`${n} closures with 2 parameters (made by a call, kept)`]: 'function m(){' + list((i) => `function f${i}(a,b){return a+b+${i}}`) + ';return function(){return f1(1,2)}}exports.x=m();',
  [`${n} top-level vars, no closure keeps them`]: list((i) => `var v${i}=${i}`) + ';exports.x=v1;',
  [`object with ${n} small properties`]: 'var o={' + list((i) => `p${i}:${i}`, ',') + '};exports.x=o;',
  '200-character string literal': `exports.x="${'x'.repeat(200)}";`,
  'Uint8Array(64)': 'exports.x=new Uint8Array(64);',
  'Uint32Array(8) + 2 Uint16Array(8) + Uint8Array(8)': 'exports.x=[new Uint32Array(8),new Uint16Array(8),new Uint16Array(8),new Uint8Array(8)];',
};
const bundles = ['tinymqtt', 'defender'];

const dir = scratch();
let write = '';
Object.values(shapes).forEach((code, i) => (write += storageWrite('s' + i, code)));
for (const b of bundles) write += storageWrite(b, readFileSync(join(import.meta.dirname, '..', 'build', b + '.js')));
await runScript(dir, write + 'console.log("WRITTEN");\n');

let measure = 'var r=[];\n';
Object.keys(shapes).forEach((_, i) => (measure += `(function(){var u=process.memory().usage;var m=require("s${i}");r.push(process.memory().usage-u);})();\n`));
measure += `var u=process.memory().usage;var t=require("tinymqtt");r.push(process.memory().usage-u);\n`;
measure += `u=process.memory().usage;var d=require("defender");r.push(process.memory().usage-u);\n`;
measure += 'console.log("R="+JSON.stringify(r)+" B="+process.memory().blocksize);\n';
const run = await runScript(dir, measure);
const m = /R=(\[[^\]]*\]) B=(\d+)/.exec(run.out);
if (!m) {
  console.error(run.out);
  process.exit(1);
}
const r: number[] = JSON.parse(m[1]);
const rows = [...Object.keys(shapes), ...bundles.map((b) => `require("${b}") (build/${b}.js)`)].map((what, i) => ({ what, JsVars: r[i] }));
console.log(`Interpreter: ${espruino} (${m[2]}-byte variables)`);
console.table(rows);
