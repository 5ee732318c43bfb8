// ESPRUINO may be relative (`ESPRUINO=../shared/espruino/espruino npm test`): the helpers start the interpreter from
// scratch folders, so they must take the path from the project root, not from the folder the interpreter runs in.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { join, relative } from 'node:path';
import { espruino, skipMessage } from './helpers/espruino.ts';

const root = join(import.meta.dirname, '..');

(espruino ? test : test.skip)(`a relative ESPRUINO runs scripts from a scratch folder${espruino ? '' : ` (${skipMessage})`}`, (t) => {
  const script = `
    import { runScript, scratch } from ${JSON.stringify(join(root, 'test', 'helpers', 'espruino.ts'))};
    const r = await runScript(scratch(), 'print("sum=" + (20 + 22));');
    console.log(r.out);`;
  const r = spawnSync(process.execPath, ['--import=tsx', '--input-type=module', '-e', script], {
    cwd: root,
    env: { ...process.env, ESPRUINO: relative(root, espruino) },
    encoding: 'utf8',
    timeout: 60000,
  });
  t.regex(r.stdout, /sum=42/, r.stdout + r.stderr);
});
