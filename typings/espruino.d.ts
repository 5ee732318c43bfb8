// Ambient declarations for the Espruino globals and built-in modules that device code uses.
// They describe what Espruino and Node have in common, so the same bundle runs on both.

/** Opaque timer handle: a number on Espruino, an object on Node. */
type TimerHandle = unknown;

declare function setTimeout(callback: () => void, ms: number): TimerHandle;
declare function setInterval(callback: () => void, ms: number): TimerHandle;
declare function clearTimeout(handle: TimerHandle): void;
declare function clearInterval(handle: TimerHandle): void;

declare var console: {
  log(...args: unknown[]): void;
};

/** Seconds since 1970 as a float (Espruino); the clock reads near 0 until it is set. */
declare function getTime(): number;
/** Base64 to a byte string (Espruino and Node both have it). */
declare function atob(base64: string): string;

/** Espruino's utility object. */
declare var E: {
  /** Byte string from bytes. */
  toString(data: Uint8Array | number[] | string): string;
  /** The string as a flat string (its bytes in one block), or undefined when no block is free. */
  toFlatString(data: string): string | undefined;
  /** Bytes from a byte string. */
  toUint8Array(data: string | number[]): Uint8Array;
};

interface EspruinoMemory {
  free: number;
  usage: number;
  total: number;
  history?: number;
  blocksize?: number;
}

declare var process: {
  memory(gc?: boolean): EspruinoMemory;
  env: { [key: string]: unknown };
};

/** Event emitter shape shared by Espruino and Node objects. */
interface Emitter {
  on(event: string, listener: (...args: any[]) => void): unknown;
  emit(event: string, ...args: any[]): unknown;
  removeAllListeners(event?: string): unknown;
}

/** A connected stream socket (Espruino `net`/`tls`, or Node's). */
interface Socket extends Emitter {
  write(data: string | Uint8Array): unknown;
  end(data?: string | Uint8Array): void;
}

interface ConnectOptions {
  host?: string;
  port?: number;
  key?: string | (() => string);
  cert?: string | (() => string);
  ca?: string | (() => string);
  servername?: string;
  [other: string]: unknown;
}

interface Server extends Emitter {
  listen(port: number, ...rest: unknown[]): unknown;
  close(): void;
}

/** Espruino's `net` module (and the subset of Node's that matches it). */
interface NetModule {
  connect(options: ConnectOptions, onConnect?: () => void): Socket;
  createServer(onConnection?: (socket: Socket) => void): Server;
}

/** Espruino's `tls` module: `connect` takes PEM text (or a function returning it) for key/cert/ca. */
interface TlsModule {
  connect(options: ConnectOptions, onConnect?: () => void): Socket;
}

interface DgramSocket extends Emitter {
  bind(port: number, onListening?: () => void): unknown;
  close(): void;
  send(...args: unknown[]): void;
}

interface DgramModule {
  createSocket(type: string | { type: string }, onMessage?: (...args: any[]) => void): DgramSocket;
}

interface StorageModule {
  read(name: string, offset?: number, length?: number): string | undefined;
  write(name: string, data: string | Uint8Array, offset?: number, size?: number): boolean;
  erase(name: string): void;
  list(pattern?: RegExp | string): string[];
}

interface WifiModule extends Emitter {
  connect(ssid: string, options: { password?: string }, callback: (err?: unknown) => void): void;
  disconnect(callback?: () => void): void;
  getHostByName(hostname: string, callback: (ip: string | undefined) => void): void;
  setSNTP(server: string, tzOffset: number): void;
  getIP(callback?: (err: unknown, info: { ip: string }) => void): { ip: string };
}

declare function require(name: "net"): NetModule;
declare function require(name: "tls"): TlsModule;
declare function require(name: "dgram"): DgramModule;
declare function require(name: "Storage"): StorageModule;
declare function require(name: "Wifi"): WifiModule;
declare function require(name: string): any;
