// Mock net / dgram modules and report decoding shared by the metrics core tests.
import { EventEmitter } from 'node:events';
import * as cborg from 'cborg';

export class MockSocket extends EventEmitter {
  opts: any;
  written: any[] = [];
  remoteAddress?: string;
  remotePort?: number;
  write(d: any) {
    this.written.push(d);
    return true;
  }
  end() {}
}

export class MockServer extends EventEmitter {
  port = 0;
  closed = false;
  constructor(public onConn?: (s: any) => void) {
    super();
  }
  listen(port: number) {
    this.port = port;
    return this;
  }
  close() {
    this.closed = true;
  }
  accept(remoteAddress?: string, remotePort?: number) {
    const s = new MockSocket();
    s.remoteAddress = remoteAddress;
    s.remotePort = remotePort;
    this.onConn?.(s);
    return s;
  }
}

export class MockDgram extends EventEmitter {
  sent: any[] = [];
  bind(port: number) {
    return this;
  }
  close() {}
  send(d: any) {
    this.sent.push(d);
  }
}

export function mockNet(keep = true) {
  const m = {
    sockets: [] as MockSocket[],
    connect(opts: any, cb?: () => void) {
      const s = new MockSocket();
      s.opts = opts;
      if (cb) s.on('connect', cb);
      if (keep) m.sockets.push(s);
      return s;
    },
    createServer(cb?: (s: any) => void) {
      return new MockServer(cb);
    },
  };
  return m;
}

export const mockDgram = { createSocket: (_type: string, cb?: any) => { const s = new MockDgram(); if (cb) s.on('message', cb); return s; } };

export const ALL = 0xffffffff;
export const ALL_BUT_CUSTOM = 0x1ff;

/** What each instance's counters (network_stats, then the slot overflow) read at its last snapshot. */
const seen = new WeakMap<object, number[]>();
const STATS = ['bytes_in', 'bytes_out', 'packets_in', 'packets_out'];

/** The current report as an object with long tags (decoded from canonical CBOR), its network_stats and
 * info[1] (slot overflow) counted since the previous snapshot of the same instance: writeReport never resets
 * the counters (the agent subtracts what an acknowledged report carried), so this is what an agent whose every
 * report is acknowledged would send. */
export function snapshot(d: any, flags = ALL_BUT_CUSTOM, info?: number[]): any {
  const buf = new Uint8Array(4096);
  const got = info ?? [0, 0];
  const n = d.writeReport(buf, false, true, flags, 1, null, got);
  if (n < 0) throw new Error('writeReport ' + n);
  const doc: any = cborg.decode(buf.subarray(0, n), { strict: true, useMaps: false });
  const last = seen.get(d) ?? [0, 0, 0, 0, 0];
  const now = [...STATS.map((k, i) => doc.metrics.network_stats?.[k] ?? last[i]), got[1]];
  seen.set(d, now);
  STATS.forEach((k, i) => doc.metrics.network_stats && (doc.metrics.network_stats[k] -= last[i]));
  got[1] -= last[4];
  return doc;
}

export function connections(d: any): string[] {
  return snapshot(d).metrics.tcp_connections.established_connections.connections.map((c: any) => c.remote_addr);
}
export function total(d: any): number {
  return snapshot(d).metrics.tcp_connections.established_connections.total;
}
