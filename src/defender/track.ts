// Socket tracking: track(mod) wraps Espruino's (or Node's) net, tls or dgram so that its sockets feed the
// metrics state of ring.ts. No object and no closure per socket: each tracked socket gets one short property
// (`_d`, its ring ticket), its own `write` (the shared tWrite) and shared module-level listeners that find
// their state through `this`. The tracker keeps no reference to any socket.
//
//   track(mod, resolver?) -> { connect, createServer, createSocket } (those that mod has)
//     connect(options, onConnect?)  as net.connect / tls.connect (options form). A host given as a name is
//        resolved first by resolver(host, cb(ip?)) (default: Wifi.getHostByName on Espruino boards, dns.lookup
//        on Node), then the socket connects to that address, which is what the report shows. Meanwhile the
//        caller holds a stand-in socket (on, write, end) that queues those calls and replays them on the real
//        socket, in order, once it exists: listeners then run on the real socket. A failed lookup reaches the
//        listeners as `error`, then `close`.
//     createServer(onConnection?)   accepted sockets count as established connections (remote address when
//        the platform gives one: socket.remoteAddress on Node); listen(port) / close() in the TCP port table
//     createSocket(type, onMessage?) dgram: bind(port) / close() in the UDP port table; send and message counted
// Slots: taken at connect (state connecting), established on `connect`, released exactly once on the first of
// close / end / error. Every write/send call and data/message event counts one packet and its bytes.
import { take, established, release, listening, count, parseIp, TP, UP } from "./ring";
import { utf8Length } from "../common/utf8";

export type Resolver = (host: string, cb: (ip?: string) => void) => void;

/** The platform's resolver: 0 when none, undefined until looked up. */
var platform: Resolver | 0 | undefined;

export function track(mod: any, resolver?: Resolver): any {
  // tracking a tracked module (the firmware makes require("net") the tracked one) would count everything twice
  if (mod._m) return mod;
  var t: any = { _m: mod, _r: resolver };
  if (mod.connect) t.connect = tConnect;
  if (mod.createServer) t.createServer = tCreateServer;
  if (mod.createSocket) t.createSocket = tCreateSocket;
  return t;
}


/** Byte length of written or received data: a (byte) string, Buffer, typed array or ArrayBuffer. */
function size(d: any): number {
  return d ? (typeof d === "string" ? utf8Length(d) : d.length || d.byteLength || 0) : 0;
}

/** write of a socket, send of a dgram socket: one packet out. The platform's own method was kept in _w: on
 * Espruino a socket's native methods are not on what Object.getPrototypeOf returns. */
function tWrite(this: any, d: any): any {
  count(1, size(d));
  return this._w.apply(this, arguments);
}

function onConnect(this: any): void {
  if (this._d) this._d = established(this._d);
}

function onData(this: any, d: any): void {
  count(0, size(d));
}

function onGone(this: any): void {
  var t = this._d;
  if (t) {
    this._d = 0;
    release(t);
  }
}

/** Starts tracking socket s: ring ticket, write counting, lifecycle listeners. */
function hook(s: any, ip: number, port: any, lp: number, st: number): void {
  s._d = take(ip, +port || 0, lp, st);
  s._w = s.write;
  s.write = tWrite;
  s.on("connect", onConnect);
  s.on("data", onData);
  s.on("end", onGone);
  s.on("close", onGone);
  s.on("error", onGone);
}

function tConnect(this: any, opts: any, cb?: any): any {
  var mod = this._m,
    host = opts.host,
    ip = parseIp(host),
    r = this._r || platform,
    o: any = {};
  if (r === void 0) {
    r = platform = 0;
    try {
      // the Linux build of Espruino has no Wifi module: require throws there, as on Node
      var wifi = require("Wifi");
      r = platform = wifi.getHostByName.bind(wifi);
    } catch (e) {
      try {
        var dns = require("dns");
        r = platform = function (h, f) {
          dns.lookup(h, 4, function (err: unknown, a: string) {
            f(err ? void 0 : a);
          });
        };
      } catch (e2) {
        // no resolver: hostnames go to the module as they are, and the address stays unknown
      }
    }
  }
  if (ip || !host || !r) {
    // the callback goes on as a listener after ours: Espruino keeps a connect callback as the one "connect"
    // handler, and adding a listener beside it breaks its listener list (an assertion in Espruino 2v29)
    var s = mod.connect(opts);
    hook(s, ip, opts.port, 0, 1);
    if (cb) s.on("connect", cb);
    return s;
  }
  // a hostname: a stand-in socket now, the real one once the address is known
  var p: any = Object.create(Stand);
  p._q = cb ? ["connect", cb] : [];
  for (var k in opts) o[k] = opts[k];
  o.servername = o.servername || host;
  setTimeout(function () {
    try {
      r(host, function (addr?: string) {
        resolved(p, mod, o, addr);
      });
    } catch (e) {
      resolved(p, mod, o);
    }
  }, 0);
  return p;
}

/** Stand-in socket p: queued call (k: event name for on, 0 write, 1 end) passed on to the real socket or
 * queued until it exists. */
function call(p: any, k: any, v?: any): any {
  var s = p._s,
    q = p._q;
  if (s) return k === 1 ? s.end() : k ? s.on(k, v) : s.write(v);
  if (q) q.push(k, v);
  return true;
}

function resolved(p: any, mod: any, o: any, addr?: string): void {
  var q = p._q,
    ip = parseIp(addr),
    i;
  if (!q) return; // the resolver answered twice
  p._q = 0;
  try {
    if (!ip) throw new Error("cannot resolve " + o.servername);
    o.host = addr;
    p._s = mod.connect(o);
  } catch (e) {
    for (i = 0; i < q.length; i += 2) if (q[i] === "error") q[i + 1].call(p, e);
    for (i = 0; i < q.length; i += 2) if (q[i] === "close") q[i + 1].call(p, true);
    return;
  }
  hook(p._s, ip, o.port, 0, 1);
  for (i = 0; i < q.length; i += 2) call(p, q[i], q[i + 1]);
}

/** The stand-in socket's methods (its prototype): queued calls in _q, the real socket in _s. */
var Stand = {
  on: function (this: any, ev: string, fn: any): any {
    call(this, ev, fn);
    return this;
  },
  write: function (this: any, d: any): any {
    return call(this, 0, d);
  },
  end: function (this: any): void {
    call(this, 1);
  },
};

/** listen / bind of a tracked server or dgram socket o (its table in o._t, its port kept in o._l). */
function tListen(this: any, port: any): any {
  var r = this._b.apply(this, arguments);
  onListening.call(this, port || 0);
  return r;
}

/** Records the listening port; unknown (Node's listen(0) / bind(0)), it is read once listening (port
 * undefined: called as the `listening` listener). */
function onListening(this: any, port?: any): void {
  if (port === void 0) port = this.address();
  if (port && port.port) port = port.port;
  if (!(port > 0)) this.on("listening", onListening);
  else if (!this._l) listening(this._t, (this._l = port), true);
}

function tClose(this: any): any {
  if (this._l) listening(this._t, this._l, false), (this._l = 0);
  return this._c.apply(this, arguments);
}

/** Gives server or dgram socket o its listening port table tab: listen/bind and close wrapped. */
function ports(o: any, tab: Uint16Array, bind: string): any {
  o._t = tab;
  o._b = o[bind]; // the platform's listen or bind, and close
  o[bind] = tListen;
  o._c = o.close;
  o.close = tClose;
  return o;
}

function tCreateServer(this: any, cb?: any): any {
  var srv: any = this._m.createServer(function (s: any) {
    try {
      hook(s, parseIp(s.remoteAddress), s.remotePort, srv._l || s.localPort || 0, 2);
    } catch (e) {
      // never throw into the platform's accept path
    }
    if (cb) cb(s);
  });
  return ports(srv, TP, "listen");
}

function tCreateSocket(this: any, type: any, cb?: any): any {
  var s = ports(this._m.createSocket(type, cb), UP, "bind");
  s._w = s.send;
  s.send = tWrite;
  s.on("message", onData);
  return s;
}
