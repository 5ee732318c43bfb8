// `npm start`'s program, driven as a library: the built bundles as simulated devices against the local
// service, in both formats and both tag styles, over the embedded aedes and over mosquitto.
import test from 'ava';
import { run, parse, describe } from '../../sim/start.ts';
import { startMosquitto } from '../helpers/mosquitto.ts';

for (const format of ['cbor', 'json'] as const) {
  for (const longTags of [false, true]) {
    test(`${format}${longTags ? ', long tags' : ''}: two devices, every report accepted`, async (t) => {
      const lines: string[] = [];
      const r = await run({ format, longTags, period: 1, devices: 2, reports: 2, print: (s) => lines.push(s) });
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
      t.true(lines.some((l) => /report \d+: tcp \d+ \[.*127\.0\.0\.1:\d+.*\].*listen tcp \[\d+\].*udp \[\d+\].*-> ACCEPTED/.test(l)), lines.join('\n'));
    });
  }
}

test('--broker: the service attaches to mosquitto and the devices report there', async (t) => {
  const m = await startMosquitto();
  const lines: string[] = [];
  try {
    const r = await run({ format: 'cbor', longTags: false, period: 1, devices: 1, reports: 2, broker: `mqtt://127.0.0.1:${m.port}`, print: (s) => lines.push(s) });
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
  t.like(parse([]), { format: 'cbor', longTags: false, period: 5, devices: 2, reports: 0 });
  t.like(parse(['--format', 'json', '--long-tags', '--period', '2', '--devices', '3', '--reports', '4']), { format: 'json', longTags: true, period: 2, devices: 3, reports: 4 });
  t.throws(() => parse(['--format', 'xml']), { message: /--format/ });
  t.throws(() => parse(['--devices', '0']), { message: /--devices/ });
  t.throws(() => parse(['--period', '0']), { message: /--period/ });
});

test('describe: one line from a report in either tag style', (t) => {
  const short = { hed: { rid: 1, v: '1.0' }, met: { tc: { ec: { cs: [{ rad: '1.2.3.4:80', lp: 5000 }], t: 1 } }, tp: { pts: [{ pt: 80 }], t: 1 }, ns: { bi: 1, bo: 2, pi: 3, po: 4 } } };
  const long = { header: { report_id: 1, version: '1.0' }, metrics: { tcp_connections: { established_connections: { connections: [{ remote_addr: '1.2.3.4:80', local_port: 5000 }], total: 1 } }, listening_tcp_ports: { ports: [{ port: 80 }], total: 1 }, network_stats: { bytes_in: 1, bytes_out: 2, packets_in: 3, packets_out: 4 } } };
  const expected = 'tcp 1 [1.2.3.4:80<-5000], listen tcp [80], in 1 B/3 out 2 B/4';
  t.is(describe(short), expected);
  t.is(describe(long), expected);
});
