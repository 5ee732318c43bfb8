// Loads a built bundle (build/NAME.js) in Node the way a board loads a Storage module: as CommonJS, with the globals
// the device code uses given by the caller (timers, getTime, Math, require, console...). One loader for the tests,
// the simulated board and the benches, so a bundle always runs with exactly the globals named here.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

export const buildDir = join(import.meta.dirname, '..', 'build');

/** Runs build/NAME.js (from `dir`) with `globals` in scope; returns its exports. Without a `require` global, the
 * bundle gets Node's require relative to the build folder. */
export function loadBundle(name: string, globals: Record<string, unknown> = {}, dir = buildDir): any {
  const file = join(dir, name + '.js');
  const scope: Record<string, unknown> = { require: createRequire(file), ...globals };
  const module = { exports: {} as any };
  const names = Object.keys(scope);
  new Function('module', 'exports', ...names, readFileSync(file, 'utf8'))(module, module.exports, ...names.map((n) => scope[n]));
  return module.exports;
}

/** The timer globals of a clock (such as test/helpers/clock.ts's), to pass to loadBundle. */
export function timerGlobals(clock: Record<'setTimeout' | 'setInterval' | 'clearTimeout' | 'clearInterval', unknown>): Record<string, unknown> {
  return {
    setTimeout: clock.setTimeout,
    setInterval: clock.setInterval,
    clearTimeout: clock.clearTimeout,
    clearInterval: clock.clearInterval,
  };
}
