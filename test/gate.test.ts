import test from 'ava';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { checkEspruinoCompat } from '../tools/gate.mjs';
import { bundles } from '../tools/build.mjs';

const fixtures = join(import.meta.dirname, 'fixtures', 'gate');

// What each fixture must be rejected for: the message has to name the construct.
const expected: Record<string, RegExp> = {
  'reject-labelled.js': /labelled statement "outer:"/,
  'reject-undefined-param.js': /"undefined" as a binding name/,
  'reject-undefined-var.js': /"undefined" as a binding name/,
  'reject-map.js': /^1:\d+ Map \(absent/,
  'reject-set.js': /^1:\d+ Set \(absent/,
  'reject-symbol.js': /^1:\d+ Symbol \(absent/,
  'reject-array-from.js': /Array\.from \(absent/,
  'reject-object-freeze.js': /Object\.freeze \(absent/,
  'reject-arrow.js': /not ECMAScript 5/,
  'reject-let.js': /not ECMAScript 5/,
  'reject-ts-helper.js': /TypeScript helper __extends/,
  'reject-use-before-declaration.js': /^2:\d+ function f used above its declaration/,
  'reject-var-before-declaration.js': /^3:\d+ var i used above its declaration/,
  'reject-bare-return-in-loop.js': /^1:\d+ bare return as the body of an if\/loop without braces/,
  'reject-bare-return-in-if.js': /^1:\d+ bare return as the body of an if\/loop without braces/,
};

test('every reject fixture has an expectation, and every expectation a fixture', (t) => {
  const files = readdirSync(fixtures).filter((f) => f.startsWith('reject-')).sort();
  t.deepEqual(files, Object.keys(expected).sort());
});

for (const [file, message] of Object.entries(expected)) {
  test(`gate rejects ${file}`, (t) => {
    const problems = checkEspruinoCompat(readFileSync(join(fixtures, file), 'utf8'));
    t.true(problems.length > 0, 'no problem reported');
    t.regex(problems.join('\n'), message);
  });
}

for (const file of readdirSync(fixtures).filter((f) => f.startsWith('accept-'))) {
  test(`gate accepts ${file}`, (t) => {
    t.deepEqual(checkEspruinoCompat(readFileSync(join(fixtures, file), 'utf8')), []);
  });
}

for (const b of bundles) {
  test(`built build/${b.name}.js passes the gate`, (t) => {
    const code = readFileSync(join(import.meta.dirname, '..', 'build', b.name + '.js'), 'utf8');
    t.deepEqual(checkEspruinoCompat(code), []);
  });
}
