// Agent test helpers: build/defender.js (and build/tinymqtt.js) loaded with their own Espruino-like fake clock
// (setInterval, getTime) and their own Storage, so each test has a fresh module state and its own time; a mock MQTT client with tinymqtt's API;
// report decoding.
import { EventEmitter } from 'node:events';
import { createServer, type Socket } from 'node:net';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import * as cborg from 'cborg';
import mqttPacket from 'mqtt-packet';
import { loadBundle, timerGlobals, buildDir } from '../../sim/bundle.ts';
import { espruinoClock, type EspruinoClock } from '../helpers/clock.ts';

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
  clock: EspruinoClock;
  storage: ReturnType<typeof memStorage>;
  /** Seconds the device clock reads (getTime()); 0 = clock not set. */
  setTime(seconds: number): void;
  /** The real tinymqtt (build/tinymqtt.js) on the same clock, over Node's net unless a transport is given. */
  tinymqtt: any;
}

/** A fresh build/defender.js (and build/tinymqtt.js) on one Espruino-like fake clock. `epoch`: the device clock in
 * seconds (0: not set). */
export function loadAgent(opts: { epoch?: number; storage?: ReturnType<typeof memStorage>; clockBroken?: () => boolean } = {}): Loaded {
  const clock = espruinoClock(0);
  const storage = opts.storage ?? memStorage();
  let offset = opts.epoch ?? 0;
  const getTime = () => {
    if (opts.clockBroken?.()) throw new Error('clock broken');
    return offset + clock.now / 1000;
  };
  const nodeRequire = createRequire(join(buildDir, 'defender.js'));
  const require = (name: string) => (name === 'Storage' ? storage : nodeRequire(name));
  const globals = { ...timerGlobals(clock), getTime, require };
  return {
    d: loadBundle('defender', globals),
    tinymqtt: loadBundle('tinymqtt', globals),
    clock,
    storage,
    setTime(seconds: number) {
      offset = seconds - clock.now / 1000;
    },
  };
}

/** Error codes: numbers, as the README documents them (strerror names them). */
export const CODE = { SUCCESS: 0, INVALID_INPUT: 1, ALREADY_STARTED: 2, PERIOD_TOO_SHORT: 3, NO_MEMORY: 4, INTERNAL_FAILURE: 5, PERIOD_TOO_LONG: 6, NOT_STARTED: 7, MQTT_FAILURE: 8, BUSY: 9 };
/** Event types: numbers, as the README documents them. */
export const EV = { METRICS_ACCEPTED: 1, METRICS_REJECTED: 2, PUBLISH_FAILED: 3, SUBSCRIBE_FAILED: 4, REPORT_FAILED: 5, REPORT_TRUNCATED: 6, SLOTS_OVERFLOWED: 7, UNEXPECTED_RESPONSE: 8 };

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

/** What a scripted broker does with a client's QoS 1 PUBLISH: acknowledge it, ignore it, or close the connection. */
export type Verdict = 'ack' | 'ignore' | 'close';

/** A broker's side of one MQTT connection: answers CONNECT, SUBSCRIBE, UNSUBSCRIBE and PINGREQ as a broker does;
 * each QoS 1 PUBLISH gets `onPublish`'s verdict. Returns the function that takes the client's bytes. Everything the
 * client sent is kept in `packets`, parsed by mqtt-packet (an independent codec). */
function brokerSide(b: { reports: { packet: any; verdict: Verdict }[] }, packets: any[], onPublish: (p: any) => Verdict, send: (p: any) => void, close: () => void) {
  const parser = mqttPacket.parser({ protocolVersion: 4 });
  parser.on('packet', (p: any) => {
    packets.push(p);
    if (p.cmd === 'connect') send({ cmd: 'connack', returnCode: 0, sessionPresent: false });
    else if (p.cmd === 'subscribe') send({ cmd: 'suback', messageId: p.messageId, granted: p.subscriptions.map((x: any) => x.qos) });
    else if (p.cmd === 'unsubscribe') send({ cmd: 'unsuback', messageId: p.messageId });
    else if (p.cmd === 'pingreq') send({ cmd: 'pingresp' });
    else if (p.cmd === 'publish' && p.qos === 1) {
      const verdict = onPublish(p);
      if (/\/defender\/metrics\/(cbor|json)$/.test(p.topic)) b.reports.push({ packet: p, verdict });
      if (verdict === 'ack') send({ cmd: 'puback', messageId: p.messageId });
      else if (verdict === 'close') close();
    }
  });
  return (d: Buffer) => void parser.parse(d);
}

const generate = (p: any) => mqttPacket.generate({ ...p, protocolVersion: 4 } as any);

/** The same broker on a loopback TCP port, for a client on the Espruino interpreter. */
export async function tcpScriptedBroker(onPublish: (p: any) => Verdict = () => 'ack') {
  const sockets: Socket[] = [];
  const b = {
    port: 0,
    connections: [] as any[][],
    reports: [] as { packet: any; verdict: Verdict }[],
    /** Closes the newest connection from the broker's side. */
    drop() {
      sockets.at(-1)?.destroy();
    },
    close: () => new Promise<void>((r) => {
      for (const s of sockets) s.destroy();
      server.close(() => r());
    }),
  };
  const server = createServer((s) => {
    const packets: any[] = [];
    sockets.push(s);
    b.connections.push(packets);
    s.on('error', () => {});
    s.on('data', brokerSide(b, packets, onPublish, (p) => s.writable && s.write(generate(p)), () => s.destroy()));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  b.port = (server.address() as any).port;
  return b;
}

/** A broker in the test, as a transport for the real tinymqtt: every socket it hands out is one connection to it
 * (see brokerSide). Answers come 1 ms later on the given clock, as from a network. */
export function scriptedBroker(clock: EspruinoClock, onPublish: (p: any) => Verdict = () => 'ack') {
  let closeLast = () => {};
  const b = {
    connections: [] as any[][],
    /** Report PUBLISHes (topic ending in /defender/metrics/cbor or json), with the broker's verdict. */
    reports: [] as { packet: any; verdict: Verdict }[],
    /** Closes the current connection from the broker's side. */
    drop() {
      closeLast();
    },
    transport: {
      connect(_opts: any, onConnect?: () => void) {
        const packets: any[] = [];
        b.connections.push(packets);
        const s: any = new EventEmitter();
        let open = true;
        const later = (f: () => void) => clock.setTimeout(() => open && f(), 1);
        const close = () =>
          later(() => {
            open = false;
            s.emit('close', false);
          });
        closeLast = close;
        const take = brokerSide(b, packets, onPublish, (p) => later(() => s.emit('data', generate(p))), close);
        s.write = (d: any) => {
          if (!open) throw new Error('write after close');
          take(Buffer.isBuffer(d) ? d : Buffer.from(d, 'latin1'));
          return true;
        };
        s.end = () => {
          if (open) close();
        };
        later(() => onConnect?.());
        return s;
      },
    },
  };
  return b;
}
