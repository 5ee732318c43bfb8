// Agent test helpers: build/defender.js loaded with its own fake clock (setInterval, getTime) and its own
// Storage, so each test has a fresh module state and its own time; a mock MQTT client with tinymqtt's API;
// report decoding.
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import FakeTimers from '@sinonjs/fake-timers';
import * as cborg from 'cborg';

const file = join(import.meta.dirname, '..', '..', 'build', 'defender.js');

/** A Storage module in memory (Espruino's read/write/erase/list). */
export function memStorage(files: Record<string, string> = {}) {
  return {
    files,
    writes: 0,
    read(name: string) {
      return name in files ? files[name] : undefined;
    },
    write(name: string, data: string) {
      this.writes++;
      files[name] = String(data);
      return true;
    },
    erase(name: string) {
      delete files[name];
    },
    list() {
      return Object.keys(files);
    },
  };
}

export interface Loaded {
  d: any;
  clock: ReturnType<typeof FakeTimers.createClock>;
  storage: ReturnType<typeof memStorage>;
  /** Seconds the device clock reads (getTime()); 0 = clock not set. */
  setTime(seconds: number): void;
}

/** A fresh build/defender.js with a fake clock. `epoch`: the device clock in seconds (0: not set). */
export function loadAgent(opts: { epoch?: number; storage?: ReturnType<typeof memStorage>; clockBroken?: () => boolean } = {}): Loaded {
  const clock = FakeTimers.createClock(0);
  const storage = opts.storage ?? memStorage();
  let offset = opts.epoch ?? 0;
  const getTime = () => {
    if (opts.clockBroken?.()) throw new Error('clock broken');
    return offset + clock.now / 1000;
  };
  const req = createRequire(file);
  const require = (name: string) => (name === 'Storage' ? storage : req(name));
  const module = { exports: {} as any };
  const fn = new Function('module', 'exports', 'require', 'setInterval', 'clearInterval', 'setTimeout', 'clearTimeout', 'getTime', readFileSync(file, 'utf8'));
  // as on Espruino, clearing `undefined` throws
  const strict = (clear: (h: any) => void) => (h: any) => {
    if (h === undefined) throw new Error('clearTimeout(undefined) not allowed');
    clear(h);
  };
  fn(module, module.exports, require, clock.setInterval, strict(clock.clearInterval), clock.setTimeout, strict(clock.clearTimeout), getTime);
  return {
    d: module.exports,
    clock,
    storage,
    setTime(seconds: number) {
      offset = seconds - clock.now / 1000;
    },
  };
}

export interface Publish {
  topic: string;
  message: Uint8Array;
  qos: number;
  cb?: (err?: any) => void;
}

/** A client with tinymqtt's API. Subscriptions and publishes are recorded; `auto` acks them at once. */
export class MockClient extends EventEmitter {
  connected = true;
  subs: { topic: string; qos: number; cb?: any }[] = [];
  unsubs: string[] = [];
  pubs: Publish[] = [];
  subscribeError: any = null;
  publishError: any = null;
  autoAck = true;
  subscribe(topic: string, qos: number, cb?: any) {
    this.subs.push({ topic, qos, cb });
    if (this.autoAck) cb?.(this.subscribeError, this.subscribeError ? 0x80 : qos);
  }
  unsubscribe(topic: string) {
    this.unsubs.push(topic);
  }
  publish(topic: string, message: Uint8Array, qos: number, cb?: any) {
    // a copy: the agent's buffer is reused for the next report once the callback ran
    this.pubs.push({ topic, message: Uint8Array.from(message), qos, cb });
    if (this.autoAck) cb?.(this.publishError);
  }
  /** Delivers an incoming message as tinymqtt does ({topic, message} with a byte string payload). */
  deliver(topic: string, payload: Uint8Array | string) {
    const message = typeof payload === 'string' ? payload : Buffer.from(payload).toString('latin1');
    this.emit('message', { topic, message });
  }
  drop() {
    this.connected = false;
    this.emit('disconnected', 'test');
  }
  restore() {
    this.connected = true;
    this.emit('connected');
  }
}

/** The published report as an object (either format). */
export function decode(p: Publish | Uint8Array, json: boolean): any {
  const m = p instanceof Uint8Array ? p : p.message;
  return json ? JSON.parse(Buffer.from(m).toString('utf8')) : cborg.decode(m, { strict: true, useMaps: false });
}

/** An AWS-shaped response to report `id`, encoded like the service does. */
export function response(thing: string, id: number, json: boolean, rejected?: { code: string; message: string }): Uint8Array {
  const r: any = { thingName: thing, reportId: id, status: rejected ? 'REJECTED' : 'ACCEPTED', timestamp: 1718000000123 };
  if (rejected) r.statusDetails = { ErrorCode: rejected.code, ErrorMessage: rejected.message };
  return json ? Buffer.from(JSON.stringify(r)) : cborg.encode(r);
}

export const base = (thing: string, json = false) => `$aws/things/${thing}/defender/metrics/${json ? 'json' : 'cbor'}`;

/** Events seen by the callback, copied (the agent reuses one event object). */
export function recorder() {
  const events: any[] = [];
  return { events, callback: (e: any) => events.push({ ...e }) };
}
