// `npm start`'s program, driven as a library: the built bundles as simulated devices against the local
// service, in both formats and both tag styles, over the embedded aedes and over mosquitto.
import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, parse, describe } from '../../sim/start.ts';
import { until } from '../helpers/until.ts';
import { startMosquitto } from '../helpers/mosquitto.ts';
import { closedPort } from '../helpers/board.ts';

const root = join(import.meta.dirname, '..', '..');

/** A fresh store file for one run (npm start's default, defender.db, is in the working folder). */
const scratchStore = () => join(mkdtempSync(join(tmpdir(), 'npm-start-')), 'defender.db');

/** `npm start -- ...args` as a user runs it. */
function npmStart(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const child = spawn('npm', ['start', '--', ...args], { cwd: root });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (status) => done({ status, stdout, stderr }));
  });
}

/** What npm start printed beyond npm's own banner (`> name start`, `> node ...`). */
const own = (out: string) => out.split('\n').filter((l) => l && !l.startsWith('> '));

for (const format of ['cbor', 'json'] as const) {
  for (const longTags of [false, true]) {
    test(`${format}${longTags ? ', long tags' : ''}: two devices, every report accepted`, async (t) => {
      const lines: string[] = [];
      const r = await run({ format, longTags, period: 1, devices: 2, reports: 2, store: scratchStore(), httpPort: 0, print: (s) => lines.push(s) });
      try {
        await r.done;
      } finally {
        await r.stop();
      }
      for (const thing of ['sim-device-1', 'sim-device-2']) {
        const v = r.verdicts.get(thing) ?? [];
        t.true(v.length >= 2, thing);
        t.true(v.every((x) => x === 'ACCEPTED'), `${thing}: ${v.join(' ')}\n${lines.join('\n')}`);
      }
      t.true(
        lines.some((l) => /report \d+: tcp connections \d+ \[.*127\.0\.0\.1:\d+.*\], listening tcp \[\d+\], listening udp \[\d+\], since last report: in \d+ bytes\/\d+ packets, out \d+ bytes\/\d+ packets -> ACCEPTED/.test(l)),
        lines.join('\n'),
      );
    });
  }
}

test('--broker: the service attaches to mosquitto and the devices report there', async (t) => {
  const m = await startMosquitto();
  const lines: string[] = [];
  try {
    const r = await run({ format: 'cbor', longTags: false, period: 1, devices: 1, reports: 2, broker: `mqtt://127.0.0.1:${m.port}`, store: scratchStore(), httpPort: 0, print: (s) => lines.push(s) });
    try {
      await r.done;
    } finally {
      await r.stop();
    }
    t.deepEqual(r.verdicts.get('sim-device-1')?.slice(0, 2), ['ACCEPTED', 'ACCEPTED'], lines.join('\n'));
  } finally {
    await m.stop();
  }
});

test('flags: defaults, and a clear error for a bad value', (t) => {
  t.like(parse([]), { format: 'cbor', longTags: false, period: 5, devices: 2, reports: 0, store: 'defender.db', httpPort: 0 });
  t.like(parse(['--store', 'postgres://h/db', '--http-port', '8080']), { store: 'postgres://h/db', httpPort: 8080 });
  t.throws(() => parse(['--http-port', '70000']), { message: '--http-port is 0 to 65535, not "70000"' });
  t.like(parse(['--format', 'json', '--long-tags', '--period', '2', '--devices', '3', '--reports', '4', '--broker', 'mqtt://127.0.0.1:1883']), {
    format: 'json',
    longTags: true,
    period: 2,
    devices: 3,
    reports: 4,
    broker: 'mqtt://127.0.0.1:1883',
  });
  t.throws(() => parse(['--format', 'xml']), { message: '--format is cbor or json, not "xml"' });
  t.throws(() => parse(['--devices', '0']), { message: '--devices is 1 to 100, not "0"' });
  t.throws(() => parse(['--period', '0']), { message: '--period is 1 to 86400 seconds, not "0"' });
  t.throws(() => parse(['--period', '-5']), { message: '--period is 1 to 86400 seconds, not "-5"' });
  t.throws(() => parse(['--reports', '-1']), { message: '--reports is a count (0 for no end), not "-1"' });
  t.throws(() => parse(['--broker', 'foo']), { message: '--broker "foo" is not a broker address; give mqtt://HOST:PORT' });
  t.throws(() => parse(['--period']), { message: '--period needs a value: --period SECONDS' });
});

test('npm start: a flag error, a bad broker URL, an unreachable broker are one line, a failing status, and come before the build', async (t) => {
  const port = await closedPort();
  const cases: [string[], number, string][] = [
    [['--period', '-5'], 2, 'npm start: --period is 1 to 86400 seconds, not "-5"'],
    [['--broker', 'foo'], 2, 'npm start: --broker "foo" is not a broker address; give mqtt://HOST:PORT'],
    [['--broker', `mqtt://127.0.0.1:${port}`], 1, `npm start: cannot reach the broker mqtt://127.0.0.1:${port}: connect ECONNREFUSED 127.0.0.1:${port}`],
    [['--devices', 'many'], 2, 'npm start: --devices is 1 to 100, not "many"'],
    [['--long-tag'], 2, 'npm start: unknown flag --long-tag (--help lists the flags)'],
  ];
  const results = await Promise.all(cases.map(([args]) => npmStart(args)));
  cases.forEach(([args, status, line], i) => {
    const r = results[i];
    t.is(r.status, status, args.join(' '));
    t.deepEqual(own(r.stderr), [line], args.join(' '));
    // nothing built: the build prints each bundle's size
    t.deepEqual(own(r.stdout), [], args.join(' '));
  });
});

test('npm start --help lists every flag the program takes, and the README documents each', async (t) => {
  const r = await npmStart(['--help']);
  t.is(r.status, 0);
  const listed = [...r.stdout.matchAll(/^\s+(?:-\w, )?--([\w-]+)/gm)].map((m) => m[1]);
  t.deepEqual(listed.sort(), ['broker', 'devices', 'format', 'help', 'http-port', 'long-tags', 'period', 'reports', 'store']);
  for (const flag of listed) t.notThrows(() => parse([`--${flag}`, ...(['long-tags', 'help'].includes(flag) ? [] : [flag === 'broker' ? 'mqtt://h:1' : flag === 'format' ? 'json' : flag === 'store' ? 'x.db' : '1'])]), flag);
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Running it without a board'), readme.indexOf('### The local service'));
  for (const flag of listed) t.true(section.includes(`--${flag}`), `README: --${flag}`);
  t.true(section.includes('--reports 0'), 'README: --reports 0');
});

test('npm start as a user runs it (sample profile, 2 devices, a report every 5 s): the dashboard address, and a violation raised and cleared within a minute', async (t) => {
  t.timeout(120_000);
  const lines: string[] = [];
  const r = await run({ ...parse([]), store: scratchStore(), print: (s) => lines.push(s) });
  try {
    const dash = lines.map((l) => /^dashboard on (http:\/\/127\.0\.0\.1:\d+\/)$/.exec(l)?.[1]).find(Boolean);
    t.truthy(dash, lines.join('\n'));
    // Detect's lines: "[sim-device-1] VIOLATION sample/TCP_Connection_Count (aws:num-established-tcp-connections): {"count":4} report 3, violation ID"
    const alert = (what: string) => new RegExp(`^\\[(sim-device-\\d)\\] ${what} sample/TCP_Connection_Count \\(aws:num-established-tcp-connections\\): \\{"count":(\\d)\\} report \\d+, violation ([\\w-]+)$`);
    const raisedAndCleared = () => {
      const raised = lines.map((l) => alert('VIOLATION').exec(l)).filter((m) => m !== null);
      return raised.find((m) => lines.some((l) => alert('cleared').exec(l)?.[3] === m[3]));
    };
    await until(() => raisedAndCleared() !== undefined, 60_000, () => `no violation raised and cleared within a minute:\n${lines.join('\n')}`);
    const found = raisedAndCleared()!;
    t.true(Number(found[2]) > 3, `raised at more than 3 connections: ${found[0]}`);
    // the dashboard shows it, from the store
    const past = (await (await fetch(new URL(`api/violations?active=false`, dash!))).json()) as any[];
    t.like(
      past.find((v) => v.id === found[3]),
      { thing: found[1], profile: 'sample', behavior: 'TCP_Connection_Count', metric: 'aws:num-established-tcp-connections' },
    );
    const profiles = (await (await fetch(new URL('api/profiles', dash!))).json()) as any[];
    t.like(profiles.find((p) => p.name === 'sample')?.behaviors[0], { name: 'TCP_Connection_Count', criteria: 'less-than-equals 3' });
  } finally {
    await r.stop();
  }
});

test('describe: one labelled line from a report in either tag style', (t) => {
  const short = { hed: { rid: 1, v: '1.0' }, met: { tc: { ec: { cs: [{ rad: '1.2.3.4:80', lp: 5000 }], t: 1 } }, tp: { pts: [{ pt: 80 }], t: 1 }, ns: { bi: 1, bo: 2, pi: 3, po: 4 } } };
  const long = { header: { report_id: 1, version: '1.0' }, metrics: { tcp_connections: { established_connections: { connections: [{ remote_addr: '1.2.3.4:80', local_port: 5000 }], total: 1 } }, listening_tcp_ports: { ports: [{ port: 80 }], total: 1 }, network_stats: { bytes_in: 1, bytes_out: 2, packets_in: 3, packets_out: 4 } } };
  const expected = 'tcp connections 1 [1.2.3.4:80<-5000], listening tcp [80], since last report: in 1 bytes/3 packets, out 2 bytes/4 packets';
  t.is(describe(short), expected);
  t.is(describe(long), expected);
});
