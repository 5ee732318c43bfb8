// The built bundles on a real Espruino interpreter (ESPRUINO=/path/to/espruino): written to Storage,
// then required from there in a later run, as on a board after `npm run upload`.
import test from 'ava';
import { espruino, skipMessage, scratch, storageWriteBundle, runScript } from './helpers/espruino.ts';

const t_ = espruino ? test : test.skip;

t_(`both modules load from Storage on Espruino${espruino ? '' : ` (${skipMessage})`}`, async (t) => {
  const dir = scratch();
  const write = await runScript(dir, storageWriteBundle('tinymqtt') + storageWriteBundle('defender') + 'console.log("WRITTEN", JSON.stringify(require("Storage").list()));\n');
  t.regex(write.out, /WRITTEN .*"tinymqtt"/, write.out);
  t.regex(write.out, /WRITTEN .*"defender"/, write.out);
  // A later run, as after a reset: the modules come from flash.
  const load = await runScript(
    dir,
    'var before = process.memory().usage;\n' +
      'var m = require("tinymqtt"), d = require("defender");\n' +
      'console.log("LOADED", typeof m.create, typeof d.track, typeof d.start, process.memory().usage - before);\n',
  );
  t.notRegex(load.out, /Uncaught|not found|Error/i, load.out);
  t.regex(load.out, /LOADED \w+ function/, load.out);
  t.log(load.out.trim());
});
