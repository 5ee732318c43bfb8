// Socket tracking: track(mod) wraps Espruino's (or Node's) net, tls or dgram so that its sockets feed the
// metrics state of ring.ts. No object and no closure per socket: each tracked socket gets a few short
// properties (`_d`, its ring ticket; `_w`, its own write), the shared tWrite and shared listeners (ring.ts's
// hook) that find their state through `this`. The tracker keeps no reference to any socket.
//
//   track(mod, resolver?) -> { connect, createServer, createSocket } (those that mod has)
//     connect(options, onConnect?)  as net.connect / tls.connect (options form). A host given as a name is
//        resolved first by resolver(host, cb(ip?)) (default: Wifi.getHostByName on Espruino boards, dns.lookup
//        on Node), then the socket connects to that address, which is what the report shows. Meanwhile the
//        caller holds a stand-in socket (on, write, end) that queues those calls and replays them on the real
//        socket, in order, once it exists: listeners then run on the real socket. A failed lookup reaches the
//        listeners as `error`, then `close`. The stand-in's methods are closures made per lookup, so the
//        hostname path costs no memory until it is used.
//     createServer(onConnection?)   accepted sockets count as established connections (remote address when
//        the platform gives one: socket.remoteAddress on Node); listen(port) / close() in the TCP port table
//     createSocket(type, onMessage?) dgram: bind(port) / close() in the UDP port table; send and message counted
// Slots: taken at connect (state connecting), established on `connect`, released exactly once on the first of
// close / end / error. Every write/send call and data/message event counts one packet and its bytes.
import { TP, UP, hook, tWrite, count, listening, parseIp } from "./ring";

export type Resolver = (host: string, cb: (ip?: string) => void) => void;

/** The platform's resolver: 0 when none, undefined until looked up. */
var platform: Resolver | 0 | undefined;

export function track(mod: any, resolver?: Resolver): any {
  // tracking a tracked module (the firmware makes require("net") the tracked one) would count everything twice
  if (mod._m) return mod;
  var t: any = { _m: mod };
  if (resolver) t._r = resolver;
  if (mod.connect) t.connect = tConnect;
  if (mod.createServer) t.createServer = tOpen;
  if (mod.createSocket) t.createSocket = tOpen;
  return t;
}

function tConnect(this: any, opts: any, cb?: any): any {
  var mod = this._m,
    host = opts.host,
    ip = parseIp(host),
    r = this._r || platform,
    o: any = {},
    k: any,
    q: any,
    s: any,
    p: any,
    done: any,
    dns: any;
  if (r === void 0) {
    r = platform = 0;
    try {
      // the Linux build of Espruino has no Wifi module: require throws there, as on Node
      k = require("Wifi");
      r = platform = k.getHostByName.bind(k);
    } catch (e) {
      try {
        dns = require("dns");
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
    s = mod.connect(opts);
    hook(s, ip, opts.port, 0, 1);
    if (cb) s.on("connect", cb);
    return s;
  }
  // a hostname: a stand-in socket now, the real one (s) once the address is known; until then the calls wait
  // in q as pairs (event name and listener for on, 0 and data for write, 1 for end)
  q = cb ? ["connect", cb] : [];
  p = {
    on: function (ev: string, fn: any): any {
      if (s) s.on(ev, fn);
      else if (q) q.push(ev, fn);
      return p;
    },
    write: function (d: any): any {
      if (s) return s.write(d);
      if (q) q.push(0, d);
      return true;
    },
    end: function (): void {
      if (s) s.end();
      else if (q) q.push(1, 0);
    },
  };
  for (k in opts) o[k] = opts[k];
  o.servername = o.servername || host;
  done = function (addr?: string): void {
    var l = q,
      i,
      e: any;
    if (!l) return; // the resolver answered twice
    q = 0;
    try {
      if (!(ip = parseIp(addr))) throw new Error("cannot resolve " + o.servername);
      o.host = addr;
      s = mod.connect(o);
    } catch (x) {
      e = x;
    }
    if (!e) hook(s, ip, o.port, 0, 1);
    for (i = 0; i < l.length; i += 2) {
      if (!e) l[i] === 1 ? s.end() : l[i] ? s.on(l[i], l[i + 1]) : s.write(l[i + 1]);
      else if (l[i] === "error") l[i + 1].call(p, e);
    }
    for (i = 0; e && i < l.length; i += 2) if (l[i] === "close") l[i + 1].call(p, true);
  };
  setTimeout(function () {
    try {
      r(host, done);
    } catch (e) {
      done();
    }
  }, 0);
  return p;
}

/** createServer(onConnection?) of net or tls, and createSocket(type, onMessage?) of dgram, told apart by their
 * first argument (a listener or nothing; a type): the server or dgram socket gets its port table (its offset in
 * S in _t) and its listen or bind, and close, wrapped (the platform's own kept in _b and _c). */
function tOpen(this: any, a?: any, b?: any): any {
  var mod = this._m,
    udp = a != null && typeof a !== "function",
    bind = udp ? "bind" : "listen",
    o: any = udp
      ? mod.createSocket(a, b)
      : mod.createServer(function (s: any) {
          try {
            hook(s, parseIp(s.remoteAddress), s.remotePort, o._l || s.localPort || 0, 2);
          } catch (e) {
            // never throw into the platform's accept path
          }
          if (a) a(s);
        });
  o._t = udp ? UP : TP;
  o._b = o[bind];
  o[bind] = tListen;
  o._c = o.close;
  o.close = tClose;
  if (udp) {
    o._w = o.send;
    o.send = tWrite;
    o.on("message", count);
  }
  return o;
}

/** listen / bind of a tracked server or dgram socket. */
function tListen(this: any, port: any): any {
  var r = this._b.apply(this, arguments);
  onListening.call(this, port || 0);
  return r;
}

/** Records the listening port; unknown (Node's listen(0) / bind(0)), it is read once listening (port
 * undefined: called as the "listening" listener). */
function onListening(this: any, port?: any): void {
  if (port === void 0) port = this.address();
  if (port && port.port) port = port.port;
  if (!(port > 0)) this.on("listening", onListening);
  else if (!this._l) listening(this._t, (this._l = port), 1);
}

function tClose(this: any): any {
  if (this._l) listening(this._t, this._l, 0), (this._l = 0);
  return this._c.apply(this, arguments);
}
