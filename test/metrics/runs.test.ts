// src/defender/runs.ts is what tools/runs.ts makes of the tag table (src/common/spec.ts): the writer's keys and
// the validator's come from the same table. After an edit of the table or of the recipe, `npm run runs`.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { generate, runsFile } from '../../tools/runs.ts';

test('src/defender/runs.ts is up to date with the tag table and tools/runs.ts', (t) => {
  t.is(readFileSync(runsFile, 'utf8'), generate(), 'run npm run runs');
});
