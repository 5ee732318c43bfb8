// docs/report-format.md says what src/common/spec.ts says: the tag table, and the list limit in the rules.
import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tagNames, MAX_LIST } from '../src/common/spec.ts';

const page = readFileSync(join(import.meta.dirname, '..', 'docs', 'report-format.md'), 'utf8');

test('docs/report-format.md: the tag table is tagNames(), pair for pair', (t) => {
  const table = page.slice(page.indexOf('<!-- tags:start -->'), page.indexOf('<!-- tags:end -->'));
  const rows = [...table.matchAll(/^\| `([a-z_]+)` \| `([a-z_]+)` \|$/gm)].map((m) => m[1] + ' ' + m[2]);
  t.deepEqual(rows, tagNames().split(','));
});

test('docs/report-format.md: the list limit is MAX_LIST', (t) => {
  const rules = page.slice(page.indexOf('<!-- rules:start -->'), page.indexOf('<!-- rules:end -->'));
  t.regex(rules, new RegExp(`at most ${MAX_LIST} entries`));
});
