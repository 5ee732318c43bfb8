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

/** The current report as an object with long tags (decoded from canonical CBOR; stats reset as a side effect). */
export function snapshot(d: any, flags = ALL_BUT_CUSTOM, info?: number[]): any {
  const buf = new Uint8Array(4096);
  const n = d.writeReport(buf, false, true, flags, 1, null, info);
  if (n < 0) throw new Error('writeReport ' + n);
  return cborg.decode(buf.subarray(0, n), { strict: true, useMaps: false });
}

export function connections(d: any): string[] {
  return snapshot(d).metrics.tcp_connections.established_connections.connections.map((c: any) => c.remote_addr);
}
export function total(d: any): number {
  return snapshot(d).metrics.tcp_connections.established_connections.total;
}
