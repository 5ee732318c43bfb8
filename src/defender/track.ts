// Socket tracking: track(mod) wraps Espruino's (or Node's) net, tls or dgram so that its sockets feed the
// metrics state of ring.ts. No object and no closure per socket: each tracked socket gets a few short
// properties (`_d`, its ring ticket; `_w`, its own write), and ring.ts's shared tWrite and listeners, which
// find their state through `this`. The tracker keeps no reference to any socket.
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
import { S, EST, OVF, SEQ, TP, UP, RING, onConnect, onGone, tWrite, count, parseIp } from "./ring";

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

/** connect(options, onConnect?) of a tracked net or tls module; also how a tracked server adopts a socket it
 * accepted (options: the socket; onConnect: the server's port). Either way the socket takes a slot (connecting,
 * or established when accepted), its own write is kept in _w for tWrite, and ring.ts's listeners follow it. */
function tConnect(this: any, opts: any, cb?: any): any {
  var t = this,
    st = 1, // 1 connecting, 2 established
    ip,
    port,
    lp = 0,
    s: any,
    i,
    host: any,
    r: any,
    o: any,
    q: any,
    p: any,
    done: any,
    m: any, // the platform's name resolving module
    k;
  if (opts.write) {
    // accepted: the remote address when the platform gives one (socket.remoteAddress on Node)
    s = opts;
    ip = parseIp(s.remoteAddress);
    port = s.remotePort;
    lp = cb || s.localPort || 0;
    st = 2;
  } else {
    host = opts.host;
    ip = parseIp(host);
    r = t._r || platform;
    if (r === void 0) {
      r = platform = 0;
      try {
        // the Linux build of Espruino has no Wifi module: require throws there, as on Node
        m = require("Wifi");
        r = platform = m.getHostByName.bind(m);
      } catch (e) {
        try {
          m = require("dns");
          r = platform = function (h, f) {
            m.lookup(h, 4, function (err: unknown, a: string) {
              f(err ? void 0 : a);
            });
          };
        } catch (e2) {
          // no resolver: hostnames go to the module as they are, and the address stays unknown
        }
      }
    }
    if (!ip && host && r) {
      // a hostname: a stand-in socket now, the real one (s) once the address is known; until then the calls
      // wait in q as pairs (event name and listener for on, 0 and data for write, 1 for end)
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
      o = {};
      for (i in opts) o[i] = opts[i];
      o.servername = o.servername || host;
      done = function (addr?: string): void {
        var l = q,
          e: any,
          j;
        if (!l) return; // the resolver answered twice
        q = 0;
        try {
          if (!parseIp(addr)) throw new Error("cannot resolve " + o.servername);
          o.host = addr;
          s = tConnect.call(t, o); // an address now: connects and tracks
        } catch (x) {
          e = x;
        }
        for (j = 0; j < l.length; j += 2) {
          if (!e) l[j] === 1 ? s.end() : l[j] ? s.on(l[j], l[j + 1]) : s.write(l[j + 1]);
          else if (l[j] === "error") l[j + 1].call(p, e);
        }
        for (j = 0; e && j < l.length; j += 2) if (l[j] === "close") l[j + 1].call(p, true);
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
    s = t._m.connect(opts);
    port = opts.port;
  }
  // its slot; the ticket: > 0 its slot's, -1 connecting without a slot, -2 established without a slot
  k = -st;
  if (st > 1) S[EST]++;
  for (i = RING; i < S.length; i += 3) {
    if (!S[i + 2]) {
      S[i] = ip;
      S[i + 1] = ((+port || 0) << 16) | lp;
      k = S[SEQ] = S[SEQ] > 0x7ffffffd ? 1 : S[SEQ] + 1;
      S[i + 2] = st > 1 ? k : -k;
      break;
    }
  }
  if (k < 0) S[OVF]++;
  s._d = k;
  s._w = s.write;
  s.write = tWrite;
  s.on("connect", onConnect);
  s.on("data", count);
  s.on("end", onGone);
  s.on("close", onGone);
  s.on("error", onGone);
  // the callback goes on as a listener after ours: Espruino keeps a connect callback as the one "connect"
  // handler, and adding a listener beside it breaks its listener list (an assertion in Espruino 2v29)
  if (st < 2 && cb) s.on("connect", cb);
  return s;
}

/** createServer(onConnection?) of net or tls, and createSocket(type, onMessage?) of dgram, told apart by their
 * first argument (a listener or nothing; a type). The server or dgram socket gets its listen or bind, and close,
 * wrapped by closures made here: many devices never listen, and a function costs RAM on Espruino only while it
 * exists. */
function tOpen(this: any, a?: any, b?: any): any {
  var mod = this._m,
    udp = a != null && typeof a !== "function",
    bind = udp ? "bind" : "listen",
    tab = udp ? UP : TP, // its port table in S
    port = 0, // its listening port, once known
    o: any,
    listen: any, // the platform's listen or bind, and close
    close: any,
    /** Records the listening port in the table (off: forgets it); a port not known yet (Node's listen(0) /
     * bind(0)) is read once listening (p undefined: the "listening" listener). The table's total stays exact;
     * a full table lists what it can. */
    record = function (p?: any, off?: number): void {
      var i;
      if (off) {
        p = port;
        port = 0;
      } else {
        if (p === void 0) p = o.address();
        if (p && p.port) p = p.port;
        if (!(p > 0)) {
          o.on("listening", record);
          return;
        }
        if (port) return;
        port = p;
      }
      if (!off || S[tab]) S[tab] += off ? -1 : 1;
      for (i = tab + 1; i < tab + 9; i++) {
        if (S[i] === (off ? p : 0)) {
          S[i] = off ? 0 : p;
          break;
        }
      }
    };
  o = udp
    ? mod.createSocket(a, b)
    : mod.createServer(function (s: any) {
        try {
          tConnect(s, port);
        } catch (e) {
          // never throw into the platform's accept path
        }
        if (a) a(s);
      });
  listen = o[bind];
  close = o.close;
  o[bind] = function (p: any): any {
    var r = listen.apply(o, arguments);
    record(p || 0);
    return r;
  };
  o.close = function (): any {
    if (port) record(0, 1);
    return close.apply(o, arguments);
  };
  if (udp) {
    o._w = o.send;
    o.send = tWrite;
    o.on("message", count);
  }
  return o;
}
