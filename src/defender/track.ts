// Socket tracking: track(module) wraps Espruino's (or Node's) net, tls or dgram so that its sockets feed
// the metrics state of ring.ts. No object and no closure per socket: each tracked socket gets one short
// property (`_d`, its ring ticket), its own `write` (the shared tWrite) and shared module-level listeners
// that find their state through `this`. The tracker keeps no reference to any socket.
//
//   track(mod, resolver?) -> { connect, createServer, createSocket } (those that mod has)
//     connect(options, onConnect?)  as net.connect / tls.connect (options form). A host given as a name is
//        resolved first by resolver(host, cb(ip?)) (default: Wifi.getHostByName on Espruino boards, dns.lookup
//        on Node), then the socket connects to that address, which is what the report shows. Meanwhile the
//        caller holds a stand-in socket (on/emit/write/end; writes are queued) that forwards every
//        event of the real one; a failed lookup arrives as its `error` event, then `close`.
//     createServer(onConnection?)   accepted sockets count as established connections (remote address when
//        the platform gives one: socket.remoteAddress on Node); listen(port) / close() in the TCP port table
//     createSocket(type, onMessage?) dgram: bind(port) / close() in the UDP port table; send and message counted
// Slots: taken at connect (state connecting), established on `connect`, released exactly once on the first of
// close / end / error. Every write call and data/message event counts one packet and its bytes.
import { M, take, established, release, portAdd, portDel, count, parseIp } from "./ring";
import { utf8Length } from "../common/utf8";

export type Resolver = (host: string, cb: (ip?: string) => void) => void;

/** The platform's resolver: null when none, undefined until looked up. */
var platform: Resolver | null | undefined;

function defaultResolver(): Resolver | null {
  if (platform === void 0) {
    platform = null;
    try {
      // the Linux build of Espruino has no Wifi module: require throws there, as on Node
      var wifi = require("Wifi");
      if (wifi.getHostByName) platform = wifi.getHostByName.bind(wifi);
    } catch (e) {
      try {
        var dns = require("dns");
        platform = function (host, cb) {
          dns.lookup(host, 4, function (err: unknown, ip: string) {
            cb(err ? void 0 : ip);
          });
        };
      } catch (e2) {
        // no resolver: hostnames go to the module as they are, and the address stays unknown
      }
    }
  }
  return platform;
}

export function track(mod: any, resolver?: Resolver): any {
  var t: any = { _m: mod, _r: resolver };
  if (mod.connect) t.connect = tConnect;
  if (mod.createServer) t.createServer = tCreateServer;
  if (mod.createSocket) t.createSocket = tCreateSocket;
  return t;
}

/** Byte length of written or received data: a (byte) string, Buffer or typed array. */
function size(d: any): number {
  return d ? (typeof d === "string" ? utf8Length(d) : d.length || d.byteLength || 0) : 0;
}

/** The method name of this object's prototype (the module's own), applied to args. */
function proto(o: any, name: string, args: IArguments): any {
  return Object.getPrototypeOf(o)[name].apply(o, args);
}

function tWrite(this: any, d: any): any {
  count(true, size(d));
  return proto(this, "write", arguments);
}

function onConnect(this: any): void {
  if (this._d) this._d = established(this._d);
}

function onData(this: any, d: any): void {
  count(false, size(d));
}

function onGone(this: any): void {
  var t = this._d;
  if (t) {
    this._d = 0;
    release(t);
  }
}

/** Starts tracking socket s: ring ticket, write counting, lifecycle listeners. */
function hook(s: any, ip: number, port: number, lp: number, st: number): void {
  s._d = take(ip, port, lp, st);
  s.write = tWrite;
  s.on("connect", onConnect);
  s.on("data", onData);
  s.on("end", onGone);
  s.on("close", onGone);
  s.on("error", onGone);
}

function tConnect(this: any, opts: any, cb?: any): any {
  var mod = this._m;
  var host = opts && opts.host;
  var port = (opts && +opts.port) || 0;
  var ip = parseIp(host);
  var r = this._r || defaultResolver();
  if (ip || !host || !r) {
    var s = mod.connect(opts, cb);
    hook(s, ip, port, 0, 1);
    return s;
  }
  // a hostname: a stand-in socket now, the real one once the address is known
  var p: any = Object.create(Stand);
  p._e = {};
  p._q = [];
  if (cb) p.on("connect", cb);
  var o: any = {};
  for (var k in opts) o[k] = opts[k];
  if (!o.servername) o.servername = host;
  setTimeout(function () {
    try {
      r(host, function (addr?: string) {
        resolved(p, mod, o, addr);
      });
    } catch (e) {
      resolved(p, mod, o, void 0);
    }
  }, 0);
  return p;
}

/** Events forwarded from the real socket to its stand-in. */
var FWD = ["connect", "data", "drain", "end", "close", "error"];
var forward: Array<(a?: any) => void> = [];
for (var i = 0; i < FWD.length; i++) forward.push(forwarder(FWD[i]));

function forwarder(ev: string): (a?: any) => void {
  return function (this: any, a?: any) {
    if (this._p) this._p.emit(ev, a);
  };
}

function resolved(p: any, mod: any, o: any, addr?: string): void {
  if (p._s) return;
  if (p._x) return p.emit("close", false);
  var ip = parseIp(addr);
  var s: any;
  try {
    if (!ip) throw new Error("cannot resolve " + o.servername);
    o.host = addr;
    s = mod.connect(o);
  } catch (e) {
    p._q = null;
    p.emit("error", e);
    return p.emit("close", true);
  }
  hook(s, ip, +o.port || 0, 0, 1);
  s._p = p;
  p._s = s;
  for (var i = 0; i < FWD.length; i++) s.on(FWD[i], forward[i]);
  for (i = 0; i < p._q.length; i++) s.write(p._q[i]);
  p._q = null;
}

/** The stand-in socket's methods (its prototype). Listeners in _e, queued writes in _q, real socket _s. */
var Stand = {
  on: function (this: any, ev: string, fn: any): any {
    (this._e[ev] || (this._e[ev] = [])).push(fn);
    return this;
  },
  emit: function (this: any, ev: string, a?: any): boolean {
    var l = this._e[ev];
    if (!l) return false;
    l = l.slice();
    for (var i = 0; i < l.length; i++) l[i].call(this, a);
    return true;
  },
  write: function (this: any, d: any): boolean {
    if (this._s) return this._s.write(d);
    if (this._q) this._q.push(d);
    return true;
  },
  end: function (this: any): void {
    if (this._s) this._s.end();
    else this._x = true;
  },
};

/** Listening port of server or dgram socket o (kept in o._l), in table tab. */
function listenOn(o: any, tab: Uint16Array, port: any): void {
  if (typeof port === "object" && port) port = port.port;
  if (!(port > 0)) {
    try {
      var a = o.address && o.address();
      port = a && a.port;
    } catch (e) {
      // not bound yet (Node's dgram before 'listening'): the port stays unknown
    }
  }
  if (port > 0 && !o._l) {
    o._l = port;
    portAdd(tab, port);
  } else if (!(port > 0) && o.on) {
    // Node's listen(0) / bind(0): the port is known once listening
    o.on("listening", tab === M._tp ? onTcpListening : onUdpListening);
  }
}

function onTcpListening(this: any): void {
  listenOn(this, M._tp, 0);
}

function onUdpListening(this: any): void {
  listenOn(this, M._up, 0);
}

function listenOff(o: any, tab: Uint16Array): void {
  if (o._l) {
    portDel(tab, o._l);
    o._l = 0;
  }
}

function tCreateServer(this: any, cb?: any): any {
  var srv: any = this._m.createServer(function (s: any) {
    try {
      hook(s, parseIp(s.remoteAddress), s.remotePort || 0, srv._l || s.localPort || 0, 2);
    } catch (e) {
      // never throw into the platform's accept path
    }
    if (cb) cb(s);
  });
  srv.listen = tListen;
  srv.close = tServerClose;
  return srv;
}

function tListen(this: any, port: any): any {
  var r = proto(this, "listen", arguments);
  listenOn(this, M._tp, port);
  return r;
}

function tServerClose(this: any): any {
  listenOff(this, M._tp);
  return proto(this, "close", arguments);
}

function tCreateSocket(this: any, type: any, cb?: any): any {
  var s = this._m.createSocket(type, cb);
  s.bind = tBind;
  s.close = tUdpClose;
  s.send = tSend;
  s.on("message", onData);
  return s;
}

function tBind(this: any, port: any): any {
  var r = proto(this, "bind", arguments);
  listenOn(this, M._up, port);
  return r;
}

function tUdpClose(this: any): any {
  listenOff(this, M._up);
  return proto(this, "close", arguments);
}

function tSend(this: any, d: any): any {
  count(true, size(d));
  return proto(this, "send", arguments);
}
