// Socket tracking (src/defender/track.ts + ring.ts) on Espruino: what it costs in RAM, measured on the interpreter
// named by ESPRUINO (ideally the ESP32 variable layout).
//   - its share of require("defender"): track.ts and ring.ts alone, built with the project's rollup and terser
//     settings as a module exporting track and setSlots, written to Storage and required from there;
//   - one tracked socket against the peer, one raw `net` socket: each connected to an echo server here on
//     loopback, with the application's data, close and error listeners (shared functions, so only the sockets are
//     counted), one write and one end(data) done;
//   - the first connection by hostname: while connected, and what stays held once it is closed and dropped.
// Also the minified size of that module (`--print` prints it). Exits non-zero when a target is missed while an interpreter is present.
import typescript from '@rollup/plugin-typescript';
import terser from '@rollup/plugin-terser';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { rollup } from 'rollup';
import { terserOptions } from '../tools/build.mjs';
import { espruino, scratch, storageWrite, runScript } from '../test/helpers/espruino.ts';
import { freePort } from '../test/helpers/net.ts';

const root = join(import.meta.dirname, '..');
const SHARE_TARGET = 30; // JsVars of require("defender") for track + ring (issue 11)
const BYTES_TARGET = 2500; // minified bytes of track + ring (issue 11)
const SOCKETS = 4; // sockets of each kind, to average over

async function buildTrackModule(): Promise<string> {
  const entry = '\0track-entry';
  const bundle = await rollup({
    input: entry,
    plugins: [
      {
        name: 'track-entry',
        resolveId: (id: string) => (id === entry ? entry : null),
        load: (id: string) =>
          id === entry
            ? `export { track } from ${JSON.stringify(join(root, 'src/defender/track.ts'))};\nexport { setSlots } from ${JSON.stringify(join(root, 'src/defender/ring.ts'))};\n`
            : null,
      },
      typescript({ tsconfig: join(root, 'tsconfig.json'), noEmit: false, noEmitOnError: true, outDir: undefined }),
    ],
  });
  const { output } = await bundle.generate({ format: 'cjs', exports: 'named', esModule: false, strict: false, freeze: false, generatedCode: 'es5', plugins: [terser(terserOptions as any)] });
  await bundle.close();
  return output[0].code.trimEnd() + '\n';
}

const code = await buildTrackModule();
if (process.argv.includes('--print')) console.log(code);
const bytes = Buffer.byteLength(code);
console.log('| what | bytes | target | of target |\n| --- | --- | --- | --- |');
console.log(`| track.ts + ring.ts, minified | ${bytes} | <= ${BYTES_TARGET} | ${((bytes / BYTES_TARGET) * 100).toFixed(0)}% |`);
let missed = bytes > BYTES_TARGET;

if (!espruino) {
  console.log('\nmemory on Espruino: skipped (set ESPRUINO=/path/to/espruino, ideally a build with the ESP32 variable layout)');
} else {
  const port = await freePort();
  const echo: Server = createServer((s) => s.on('error', () => {}).pipe(s));
  await new Promise<void>((r) => echo.listen(port, '127.0.0.1', r));
  const dir = scratch();
  await runScript(dir, storageWrite('track', code) + storageWrite('warm', 'new Int32Array(1);String.fromCharCode(1);Math.max(1,2);Math.min(1,2);exports.x=1;') + 'console.log("WRITTEN");\n');
  // the first require of a Storage module and the first use of a built-in (typed arrays, String, Math) cost
  // JsVars once, whoever pays them: a warm-up does
  const script = `
require("warm");
var raw = require("net");
var m0 = process.memory().usage;
var d = require("track");
var share = process.memory().usage - m0;
var tracked = d.track(raw);
var tracking = process.memory().usage - m0;
function nop() {}
function open(mod, list) {
  for (var i = 0; i < ${SOCKETS}; i++) {
    var s = mod.connect({ host: "127.0.0.1", port: ${port} });
    s.on("data", nop); s.on("close", nop); s.on("error", nop);
    list.push(s);
  }
}
function use(list) { for (var i = 0; i < list.length; i++) list[i].write("hello"); }
var raws = [], trackeds = [], u0, u1, u2;
// a connection by hostname: the caller holds a stand-in until the name resolves; the stand-ins' shared methods
// are made at the first one and kept
var named = d.track(raw, function (host, cb) { setTimeout(function () { cb("127.0.0.1"); }, 1); }), h0, h1, byNameSocket;
function byName() {
  h0 = process.memory().usage;
  byNameSocket = named.connect({ host: "localhost", port: ${port} });
  byNameSocket.on("data", nop); byNameSocket.on("close", nop); byNameSocket.on("error", nop);
  setTimeout(function () {
    byNameSocket.write("hello");
    h1 = process.memory().usage;
    byNameSocket.end("bye");
    setTimeout(function () { byNameSocket = 0; console.log("NAMED " + (h1 - h0) + " " + (process.memory().usage - h0)); }, 300);
  }, 300);
}
setTimeout(function () {
  u0 = process.memory().usage; open(raw, raws);
  setTimeout(function () {
    use(raws); u1 = process.memory().usage; open(tracked, trackeds);
    setTimeout(function () {
      use(trackeds); u2 = process.memory().usage;
      console.log("RESULT " + share + " " + tracking + " " + (u1 - u0) / ${SOCKETS} + " " + (u2 - u1) / ${SOCKETS});
      var all = raws.concat(trackeds);
      for (var i = 0; i < all.length; i++) all[i].end("bye");
      setTimeout(byName, 300);
    }, 500);
  }, 500);
}, 10);
`;
  const run = await runScript(dir, script, 20000);
  echo.close();
  const m = /RESULT (\d+) (\d+) ([\d.]+) ([\d.]+)/.exec(run.out);
  if (!m) {
    console.error(run.out);
    process.exit(1);
  }
  const [share, tracking, rawSocket, trackedSocket] = m.slice(1).map(Number);
  const named = /NAMED (-?\d+) (-?\d+)/.exec(run.out);
  if (!named) {
    console.error(run.out);
    process.exit(1);
  }
  console.log(`\nmemory on Espruino (${espruino}): process.memory().usage differences`);
  console.log('| what | JsVars | target or peer | ratio |\n| --- | --- | --- | --- |');
  console.log(`| require() of track + ring (exports track, setSlots) | ${share} | <= ${SHARE_TARGET} | ${((share / SHARE_TARGET) * 100).toFixed(0)}% of target |`);
  console.log(`| the same after the first track(require("net")) | ${tracking} | | |`);
  console.log(`| one tracked net socket, connected, 3 listeners, one write | ${trackedSocket} | raw net socket: ${rawSocket} | ${(trackedSocket / rawSocket).toFixed(2)}x |`);
  console.log(`| the first connection by hostname (a resolver given), connected, one write | ${named[1]} | by address: ${trackedSocket} | |`);
  console.log(`| what it leaves held once closed and dropped: the stand-ins' shared methods (256 before they were made by one call) | ${named[2]} | | |`);
  if (share > SHARE_TARGET) missed = true;
}
process.exit(missed ? 1 : 0);
