// A simulated Espruino board in Node: runs the built bundles with the globals and built-in modules they use on
// the device. Storage is an in-memory file table; net and dgram are Node's; tls is Node's behind a shim that
// takes DER key, cert and ca as Espruino's does; Wifi is whatever the caller gives (none by default, as on
// Espruino's Linux build); require("tinymqtt") / require("defender") load the bundles from the build folder, once
// per board, as the board loads its Storage modules.
import { createPrivateKey } from 'node:crypto';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { buildDir, loadBundle } from './bundle.ts';

export { buildDir };

export interface BoardOptions {
  /** Folder holding tinymqtt.js, defender.js and firmware.js (default build/). */
  build?: string;
  /** Storage files at start. */
  files?: Record<string, string>;
  /** The Wifi module (connect, on, setSNTP, getHostByName), or none. */
  wifi?: any;
  /** Where console.log goes (default: nowhere). */
  log?: (line: string) => void;
}

export interface Board {
  files: Record<string, string>;
  /** The board's require: built-in modules and the Storage modules. */
  require(name: string): any;
  /** Runs build/NAME.js as the board's application (an IIFE bundle such as firmware.js). */
  run(name: string): void;
  /** The board's global object (the firmware puts `mqtt` there). */
  global: Record<string, any>;
  /** Powers the board off: every timer its code set is cleared, and the MQTT client the firmware made global
   * is disconnected. */
  stop(): void;
}

/** A byte string of DER as PEM; text that is PEM already stays as it is. */
function pem(v: any, label: 'CERTIFICATE' | 'PRIVATE KEY'): any {
  if (typeof v !== 'string' || v.startsWith('-----')) return v;
  const der = Buffer.from(v, 'latin1');
  if (label === 'PRIVATE KEY') {
    for (const type of ['pkcs8', 'pkcs1'] as const) {
      try {
        return createPrivateKey({ key: der, format: 'der', type }).export({ format: 'pem', type: 'pkcs8' });
      } catch {
        // try the other encoding
      }
    }
  }
  return `-----BEGIN ${label}-----\n${der.toString('base64').replace(/.{64}/g, '$&\n')}\n-----END ${label}-----\n`;
}

/** Espruino's tls on top of Node's: key, cert and ca come as DER byte strings there. */
function espruinoTls(nodeTls: any) {
  return {
    connect(o: any, cb?: () => void) {
      return nodeTls.connect({ ...o, key: pem(o.key, 'PRIVATE KEY'), cert: pem(o.cert, 'CERTIFICATE'), ca: pem(o.ca, 'CERTIFICATE') }, cb);
    },
  };
}

export function board(opts: BoardOptions = {}): Board {
  const dir = opts.build ?? buildDir;
  const files = opts.files ?? {};
  const nodeRequire = createRequire(join(dir, 'defender.js'));
  const storage = {
    read: (n: string) => files[n],
    write: (n: string, v: any) => ((files[n] = String(v)), true),
    erase: (n: string) => void delete files[n],
    list: () => Object.keys(files),
  };
  const modules: Record<string, any> = {};
  const console = { log: (...a: unknown[]) => opts.log?.(a.join(' ')) };
  const global: Record<string, any> = {};
  // the board's timers, so that stop() can clear them
  const timers = new Set<any>();
  const setT = (f: () => void, ms: number) => {
    const h = setTimeout(() => {
      timers.delete(h);
      f();
    }, ms);
    timers.add(h);
    return h;
  };
  // arguments after ms go to the callback, as on Espruino
  const setI = (f: (...a: any[]) => void, ms: number, ...args: any[]) => {
    const h = setInterval(f, ms, ...args);
    timers.add(h);
    return h;
  };
  const clear = (h: any) => {
    timers.delete(h);
    clearTimeout(h);
  };
  const globals = (): Record<string, unknown> => ({ require: req, console, setTimeout: setT, setInterval: setI, clearTimeout: clear, clearInterval: clear });
  const req = (m: string): any => {
    if (m === 'Storage') return storage;
    if (m === 'Wifi') {
      if (!opts.wifi) throw new Error('Module Wifi not found');
      return opts.wifi;
    }
    if (m === 'tls') return (modules.tls ??= espruinoTls(nodeRequire('node:tls')));
    if (m === 'net' || m === 'dgram') return nodeRequire('node:' + m);
    if (m === 'tinymqtt' || m === 'defender') {
      return (modules[m] ??= loadBundle(m, globals(), dir));
    }
    return nodeRequire(m);
  };
  return {
    files,
    require: req,
    global,
    run(name: string) {
      loadBundle(name, { global, ...globals() }, dir);
    },
    stop() {
      try {
        global.mqtt?.disconnect();
      } finally {
        for (const h of timers) clearTimeout(h);
        timers.clear();
      }
    },
  };
}
