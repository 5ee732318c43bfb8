// `npm run upload` for real, against Espruino's Linux build with its telnet server
// (ESPRUINO=/path/to/espruino): the modules land in Storage and the firmware runs and finds them.
// `npm run provision` too. All tests here share port 2323 (fixed by Espruino), so they run one at a time.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { espruino, skipMessage, scratch, startTelnet } from './helpers/espruino.ts';
import { secrets } from './helpers/secrets.ts';

const root = join(import.meta.dirname, '..');
const cli = join(root, 'node_modules', 'espruino', 'bin', 'espruino-cli.js');
const serial = espruino ? test.serial : test.skip;
const port = 'tcp://127.0.0.1:2323';

serial(`npm run upload writes both modules to Storage and the firmware finds them${espruino ? '' : ` (${skipMessage})`}`, async (t) => {
  const board = await startTelnet(scratch());
  t.teardown(() => board.stop());
  const up = spawnSync(process.execPath, [join(root, 'tools', 'upload.mjs'), '--port', port], { cwd: root, encoding: 'utf8', timeout: 60000 });
  const out = up.stdout + up.stderr;
  t.is(up.status, 0, out);
  t.regex(out, /Upload Complete/, out);
  t.regex(out, /espruino-defender: starting, thing /, out);
  // The Linux build has no Wi-Fi: the firmware says so instead of crashing.
  t.regex(out, /espruino-defender: no Wifi module on this board/, out);
  t.notRegex(out, /Uncaught|Module \w+ not found/, out);
  // A second connection, without reset: both files are in Storage.
  const list = spawnSync(process.execPath, [cli, '--no-ble', '-p', port, '-e', 'print("FILES="+JSON.stringify(require("Storage").list()))'], {
    encoding: 'utf8',
    timeout: 30000,
  });
  const files = /FILES=(\[.*\])/.exec(list.stdout);
  t.truthy(files, list.stdout + list.stderr);
  t.true(JSON.parse(files![1]).includes('tinymqtt'));
  t.true(JSON.parse(files![1]).includes('defender'));
  // The firmware is the boot code, so it runs again after a reset or power cycle.
  t.true(JSON.parse(files![1]).includes('.bootcde'));
});

serial(`provision and upload for real: the firmware finds the secrets and reports it has no Wi-Fi${espruino ? '' : ` (${skipMessage})`}`, async (t) => {
  const board = await startTelnet(scratch());
  t.teardown(() => board.stop());
  const { args } = secrets();
  const p = spawnSync(process.execPath, [join(root, 'tools', 'provision.mjs'), ...args, '--port', port], { cwd: root, encoding: 'utf8', timeout: 60000 });
  t.is(p.status, 0, p.stdout + p.stderr);
  t.regex(p.stdout, /espruino-defender: provisioned/, p.stdout);
  const u = spawnSync(process.execPath, [join(root, 'tools', 'upload.mjs'), '--port', port], { cwd: root, encoding: 'utf8', timeout: 60000 });
  const out = u.stdout + u.stderr;
  t.is(u.status, 0, out);
  t.regex(out, /espruino-defender: found device\.crt, device\.key, ca\.crt, wifi\.pass in Storage/, out);
  t.regex(out, /espruino-defender: no Wifi module on this board/, out);
  t.notRegex(out, /Uncaught/, out);
});
