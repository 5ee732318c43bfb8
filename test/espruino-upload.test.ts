// `npm run upload` and `npm run provision` for real, against Espruino's Linux build with its telnet server
// (ESPRUINO=/path/to/espruino): the modules land in Storage, the firmware runs and finds them, and both tools read
// back what they wrote; an upload whose connection is cut midway fails. All tests here share port 2323 (fixed by
// Espruino), so they run one at a time.
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { connect, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { espruino, skipMessage, scratch, startTelnet } from './helpers/espruino.ts';
import { runTool } from './helpers/board.ts';
import { secrets } from './helpers/secrets.ts';

const root = join(import.meta.dirname, '..');
const cli = join(root, 'node_modules', 'espruino', 'bin', 'espruino-cli.js');
const serial = espruino ? test.serial : test.skip;
const port = 'tcp://127.0.0.1:2323';
const skipped = espruino ? '' : ` (${skipMessage})`;

serial(`npm run upload writes both modules to Storage, the firmware finds them, and the read-back verifies them${skipped}`, async (t) => {
  const board = await startTelnet(scratch());
  t.teardown(() => board.stop());
  const up = await runTool(join(root, 'tools', 'upload.mjs'), ['--port', port]);
  const out = up.stdout + up.stderr;
  t.is(up.status, 0, out);
  t.regex(out, /espruino-defender: starting, thing /, out);
  // The Linux build has no Wi-Fi: the firmware says so instead of crashing.
  t.regex(out, /espruino-defender: no Wifi module on this board/, out);
  t.notRegex(out, /Uncaught|Module \w+ not found/, out);
  t.regex(up.stdout, /upload: verified on tcp:\/\/127\.0\.0\.1:2323: tinymqtt \d+ bytes, defender \d+ bytes, \.bootcde \d+ bytes \(sizes and CRC32 read back\)/);
  // A second connection, without reset: both files are in Storage, and the firmware is the boot code, so it runs
  // again after a reset or power cycle.
  const list = spawnSync(process.execPath, [cli, '--no-ble', '-p', port, '-e', 'print("FILES="+JSON.stringify(require("Storage").list()))'], {
    encoding: 'utf8',
    timeout: 30000,
  });
  const files = /FILES=(\[.*\])/.exec(list.stdout);
  t.truthy(files, list.stdout + list.stderr);
  for (const name of ['tinymqtt', 'defender', '.bootcde']) t.true(JSON.parse(files![1]).includes(name), name);
});

serial(`an upload whose connection is cut midway fails and says what differs${skipped}`, async (t) => {
  const board = await startTelnet(scratch());
  t.teardown(() => board.stop());
  // A relay to the interpreter that drops the first connection (the upload) after 6 KB; later ones (the read-back) pass.
  let first = true;
  const sockets: Socket[] = [];
  const relay = createServer((c) => {
    const cut = first;
    first = false;
    const up = connect(2323, '127.0.0.1');
    sockets.push(c, up);
    let sent = 0;
    c.on('data', (d) => {
      sent += d.length;
      if (cut && sent > 6000) {
        c.destroy();
        up.destroy();
      } else up.write(d);
    });
    up.on('data', (d) => c.write(d));
    for (const s of [c, up]) s.on('error', () => {});
    c.on('close', () => up.destroy());
    up.on('close', () => c.destroy());
  });
  await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    relay.close();
  });
  const relayPort = `tcp://127.0.0.1:${(relay.address() as any).port}`;
  const up = await runTool(join(root, 'tools', 'upload.mjs'), ['--port', relayPort]);
  t.is(up.status, 1, up.stdout + up.stderr);
  t.regex(up.stderr.trim().split('\n').pop()!, new RegExp(`^upload: read back from ${relayPort}, the board's Storage differs from what was sent: .*(tinymqtt|defender|\\.bootcde) (is missing|has other content|is \\d+ bytes on the board)`));
  t.notRegex(up.stdout, /verified/);
});

serial(`provision and upload for real: both verified, the firmware finds the secrets and reports it has no Wi-Fi${skipped}`, async (t) => {
  const board = await startTelnet(scratch());
  t.teardown(() => board.stop());
  const { args, env, value } = secrets();
  const p = await runTool(join(root, 'tools', 'provision.mjs'), [...args, '--port', port], env);
  t.is(p.status, 0, p.stdout + p.stderr);
  t.regex(p.stdout, /espruino-defender: provisioned/, p.stdout);
  t.regex(p.stdout, /provision: verified on tcp:\/\/127\.0\.0\.1:2323: device\.crt, device\.key, ca\.crt, wifi\.pass present with the sizes written/);
  t.false((p.stdout + p.stderr).includes(value.password));
  const u = await runTool(join(root, 'tools', 'upload.mjs'), ['--port', port]);
  const out = u.stdout + u.stderr;
  t.is(u.status, 0, out);
  t.regex(out, /espruino-defender: found device\.crt, device\.key, ca\.crt, wifi\.pass in Storage/, out);
  t.regex(out, /espruino-defender: no Wifi module on this board/, out);
  t.notRegex(out, /Uncaught/, out);
});
