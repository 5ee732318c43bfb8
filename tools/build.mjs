#!/usr/bin/env node
// Builds the device bundles: TypeScript (ES5, strict) -> rollup -> terser (ecma 5).
//   build/tinymqtt.js  Storage module "tinymqtt"
//   build/defender.js  Storage module "defender"
//   build/firmware.js  the ESP32 application, with espruino.config.json baked in
// Each bundle must pass the Espruino compat gate; the build fails otherwise.
import { rollup } from 'rollup';
import typescript from '@rollup/plugin-typescript';
import terser from '@rollup/plugin-terser';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkEspruinoCompat } from './gate.mjs';
import { loadConfig, firmwareSettings } from './config.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const defaultOut = join(root, 'build');

/** The bundles, in the order the board needs them. */
export const bundles = [
  { name: 'tinymqtt', input: 'src/tinymqtt/index.ts', format: 'cjs' },
  { name: 'defender', input: 'src/defender/index.ts', format: 'cjs' },
  { name: 'firmware', input: 'firmware/main.ts', format: 'iife' },
];

/** Terser settings shared by every bundle. Internal properties start with `_` and are
 * mangled to one or two letters: on Espruino each property name costs a variable. */
export const terserOptions = {
  ecma: 5,
  // hoist_funs: Espruino does not hoist function declarations; a function used above its declaration fails.
  // reduce_funcs: false: a function used once stays a function of its own, not an expression inlined into its
  // caller, whose text Espruino would then read at every call (src/defender/report.ts: styleRuns, custom).
  compress: { passes: 2, unsafe: false, hoist_funs: true, reduce_funcs: false },
  mangle: { properties: { regex: /^_/ } },
  format: { ascii_only: true, comments: false },
};

/** Serves the validated settings to firmware/main.ts as `import settings from "firmware-settings"`. */
function settingsPlugin(settings) {
  const id = 'firmware-settings';
  return {
    name: 'firmware-settings',
    resolveId: (source) => (source === id ? '\0' + id : null),
    load: (resolved) => (resolved === '\0' + id ? 'export default ' + JSON.stringify(settings) + ';' : null),
  };
}

/** The report writer reads the runs of every style from the code of a function that returns them and nothing
 * else, where the code lies (src/defender/report.ts): the bundle must hold that function with the text of
 * src/defender/runs.ts's Text.ALL byte for byte, in single quotes. */
function checkRunsInPlace(code) {
  const generated = readFileSync(join(root, 'src', 'defender', 'runs.ts'), 'utf8');
  const all = /^\s*ALL = ("(?:[^"\\]|\\")*"),$/m.exec(generated);
  if (!all) throw new Error('defender: src/defender/runs.ts has no Text.ALL of plain characters (npm run runs)');
  if (!code.includes("(){return'" + JSON.parse(all[1]) + "'}")) {
    throw new Error("defender: the bundle does not hold Text.ALL as the bare literal of a function (report.ts's styleRuns)");
  }
}

export async function build({ configPath = join(root, 'espruino.config.json'), out = defaultOut, quiet = false } = {}) {
  const config = loadConfig(configPath);
  mkdirSync(out, { recursive: true });
  const results = [];
  for (const b of bundles) {
    const bundle = await rollup({
      input: join(root, b.input),
      plugins: [
        settingsPlugin(firmwareSettings(config)),
        // isolatedModules off for the emit only: with it TypeScript keeps `const enum`s as objects instead of
        // inlining their values (named constants must cost nothing on the device); the typecheck keeps it on.
        typescript({ tsconfig: join(root, 'tsconfig.json'), noEmit: false, noEmitOnError: true, outDir: undefined, isolatedModules: false }),
      ],
      onwarn(warning) {
        throw new Error(`${b.name}: ${warning.message}`);
      },
    });
    const { output } = await bundle.generate({
      format: b.format,
      exports: 'named',
      esModule: false,
      strict: false,
      freeze: false,
      generatedCode: 'es5',
      plugins: [terser(terserOptions)],
    });
    await bundle.close();
    const code = output[0].code.trimEnd() + '\n';
    const problems = checkEspruinoCompat(code);
    if (problems.length) {
      throw new Error(`${b.name}: fails the Espruino compat gate:\n  ` + problems.join('\n  '));
    }
    if (b.name === 'defender') checkRunsInPlace(code);
    const file = join(out, b.name + '.js');
    writeFileSync(file, code);
    results.push({ name: b.name, file, bytes: Buffer.byteLength(code) });
  }
  // The repo is "type": "module"; this makes require("./build/defender.js") load the bundles as CommonJS on Node.
  writeFileSync(join(out, 'package.json'), JSON.stringify({ type: 'commonjs' }) + '\n');
  if (!quiet) {
    for (const r of results) console.log(`${String(r.bytes).padStart(7)} bytes  ${relative(root, r.file)}`);
  }
  return results;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  build().catch((err) => {
    console.error(err.message || err);
    process.exit(1);
  });
}
