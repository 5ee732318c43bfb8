// Socket tracking: track(mod) wraps Espruino's (or Node's) net, tls or dgram so that its sockets feed the
// metrics state of ring.ts. No object and no closure per socket: a tracked socket gets its ticket (`_d`), our
// write and end, and one shared listener for its connect, data and close events, which finds its slot through
// `this`. The platform's own write and end are kept once, here, not on every socket. The tracker keeps no
// reference to any socket.
//
//   track(mod, resolver?) -> { connect, createServer, createSocket } (those that mod has)
//     connect(...)   every form the platform's own connect takes: (options[, cb]) everywhere, (url[, cb]) on
//        Espruino, (path[, cb]) and (port[, host][, cb]) on Node, with tls's options before cb. A host given
//        as a name is resolved first by resolver(host, cb(ip?)) (default: Wifi.getHostByName on Espruino
//        boards, dns.lookup on Node), then the socket connects to that address, which is what the report
//        shows. Meanwhile the caller holds a stand-in socket whose methods (makeStandIns) are queued and
//        replayed on the real socket, in order, once it exists, and forwarded to it from then on; a method the
//        real socket lacks is skipped (destroy falls back to end). A failed lookup reaches the listeners given
//        so far as `error`, then `close`. Nothing of this exists until the first hostname.
//     createServer([options][, onConnection])   accepted sockets count as established connections (remote
//        address when the platform gives one: socket.remoteAddress on Node); listen(port) / close() in the TCP
//        port table
//     createSocket(type, onMessage?) dgram: bind(port) / close() in the UDP port table; send and message counted
// Slots: taken at connect (state connecting), established on `connect`, released at `close`, which both
// platforms emit once after an `end` or an `error` too (Espruino: even after a failed TLS handshake). Every
// write/send/end(data) call and data/message event counts one packet and its bytes.
import { S, NS, At, Slot, Ticket, Stat, Ports, setSlots } from "./ring";
import { byteStrings } from "../common/utf8";

/** Node's, to count a string's UTF-8 bytes where strings are not bytes already (Espruino on ESP32: they are). */
declare var Buffer: any;

export type Resolver = (host: string, cb: (ip?: string) => void) => void;

/** Espruino's URL parser: a global there, where connect also takes a URL; absent on Node, where a string given
 * to connect is a path. */
declare var url: { parse(s: string): { host?: string; port?: number } } | undefined;

const enum Char {
  ZERO = 48,
  DOT = 46,
}

/** The second argument of onSocket when it counts a packet going out (a data or message event never passes 1). */
const enum Direction {
  OUT = 1,
}

// Module-scope functions, not closures made at the first track(): the firmware tracks net and tls at boot, and
// on Espruino a closure costs some 4 JsVars more than a module-scope function. Functions that need no nested
// function read their arguments from `arguments`: a named parameter costs a JsVar for as long as the function
// exists.
var /** The platform's own socket write and end, kept once, not on every socket (a socket whose own differ keeps
   * them in _w and _e). */
  platformWrite: any,
  platformEnd: any,
  /** The prototype of hostname stand-ins, made at the first hostname. */
  standIns: any;

export function track(mod: any, resolver?: Resolver): any;
export function track(): any {
  var mod = arguments[0],
    resolver: Resolver = arguments[1],
    tracked: any;
  // tracking a tracked module (the firmware makes require("net") the tracked one) would count everything twice
  if (mod._m) return mod;
  tracked = { _m: mod };
  if (resolver) tracked._r = resolver;
  if (mod.connect) tracked.connect = connect;
  if (mod.createServer) tracked.createServer = open;
  if (mod.createSocket) tracked.createSocket = open;
  setSlots();
  return tracked;
}

/**
 * The one listener of a tracked socket's connect, data and close events (dgram: message), told apart by what
 * they pass: close a boolean (both platforms), connect nothing (Node) or the socket (Espruino), data and message
 * the bytes. Also how a packet going out is counted: onSocket(data, Direction.OUT).
 */
function onSocket(this: any, data?: any, direction?: Direction): void;
function onSocket(this: any): void {
  var data = arguments[0],
    out = arguments[1] === Direction.OUT ? 1 : 0;
  if (out || !(data === void 0 || data === this || typeof data === "boolean")) {
    NS[Stat.BYTES_IN + out] += data ? (typeof data === "string" && !byteStrings && typeof Buffer !== "undefined" ? Buffer.byteLength(data) : data.length || data.byteLength || 0) : 0;
    NS[Stat.PACKETS_IN + out]++;
    return;
  }
  // (declared here: Espruino makes a local when its `var` runs, and a report's publish writes through here at the
  // peak of its memory)
  var ticket = this && this._d,
    i = At.RING,
    slotted;
  if (ticket) {
    // its slot: the ticket is in it, negative while connecting
    while (ticket > 0 && i < S.length && S[i + Slot.TICKET] !== -ticket && S[i + Slot.TICKET] !== ticket) i += Slot.SIZE;
    slotted = ticket > 0 && i < S.length;
    if (typeof data !== "boolean") {
      // connect: established (without a slot when none was free, or a smaller ring dropped it)
      if (slotted) {
        if (S[i + Slot.TICKET] < 0) S[At.EST]++;
        S[i + Slot.TICKET] = ticket;
      } else {
        if (ticket !== Ticket.ESTABLISHED_WITHOUT_SLOT) S[At.EST]++;
        this._d = Ticket.ESTABLISHED_WITHOUT_SLOT;
      }
    } else {
      // close: released; a slotted ticket whose slot a smaller ring dropped counts as established
      this._d = Ticket.RELEASED;
      if ((slotted ? S[i + Slot.TICKET] > 0 : ticket !== Ticket.CONNECTING_WITHOUT_SLOT) && S[At.EST] > 0) S[At.EST]--;
      if (slotted) S[i + Slot.TICKET] = Ticket.RELEASED;
    }
  }
}

/** A tracked socket's write (and a tracked dgram socket's send): one packet out, then the platform's own. */
function tWrite(this: any): any {
  onSocket(arguments[0], Direction.OUT);
  return (this._w || platformWrite).apply(this, arguments);
}

/** A tracked socket's end: end(data) writes through the platform's own write on Espruino and on Node, never
 * through the socket's, so its data is counted here. */
function tEnd(this: any): any {
  var data = arguments[0];
  if (data != null && typeof data !== "function") onSocket(data, Direction.OUT);
  return (this._e || platformEnd).apply(this, arguments);
}

/** connect(...) of a tracked net or tls module, in any of the platform's forms; also how a tracked server adopts
 * a socket it accepted (arguments: the socket, the server's port). Either way the socket takes a slot
 * (connecting, or established when accepted), and gets our write and end and the shared listeners. */
function connect(this: any, first?: any, second?: any, third?: any, fourth?: any): any;
// Parameters from `arguments` (a named parameter costs a JsVar for as long as the function exists); no function
// nested here uses `arguments` (Espruino 2v29 would give it this function's).
function connect(this: any): any {
  var given = [arguments[0], arguments[1], arguments[2], arguments[3]],
    first = given[0],
    second = given[1],
    tracked = this,
    options: any,
    callback: any,
    host: any,
    port: any,
    pathOrUrl: any,
    localPort = 0,
    accepted = 0,
    address = 0,
    octet = -1,
    dots = 0,
    digit,
    socket: any,
    resolver: any,
    wifi: any,
    standIn: any,
    resolved: any,
    copy: any,
    arg: any,
    key,
    ticket,
    i;
  if (first && typeof first.write === "function") {
    // accepted: the remote address when the platform gives one (socket.remoteAddress on Node)
    socket = first;
    host = socket.remoteAddress;
    port = socket.remotePort;
    localPort = second || socket.localPort || 0;
    accepted = 1;
  } else {
    for (i = 0; i < given.length; i++) {
      arg = given[i];
      if (arg === void 0) continue;
      if (typeof arg === "function") callback = arg;
      else if (arg !== null && typeof arg === "object") options = arg;
      else if (i) host = arg; // connect(port, host)
      // as Node tells a path from a port: a string that is no number >= 0
      else if (typeof arg === "string" && !(+arg >= 0)) pathOrUrl = arg;
      else port = arg;
    }
    if (pathOrUrl !== void 0 || port !== void 0) {
      // one options object for every form: the platform takes that form too
      copy = {};
      if (options) for (key in options) copy[key] = options[key];
      if (port !== void 0) {
        copy.port = port;
        if (typeof host === "string") copy.host = host;
      } else if (typeof url !== "undefined" && url) {
        arg = url.parse(pathOrUrl);
        copy.host = arg.host;
        copy.port = arg.port;
      } else copy.path = pathOrUrl;
      options = copy;
    }
    host = options && options.host;
    port = options && options.port;
  }
  // the remote IPv4 address as in the ring (a.b.c.d, or ::ffff:a.b.c.d); 0 when it is no IPv4 address
  if (typeof host === "string") {
    for (i = host.indexOf("::ffff:") ? 0 : 7; i <= host.length; i++) {
      digit = host.charCodeAt(i) - Char.ZERO; // NaN past the end
      if (digit >= 0 && digit <= 9) {
        octet = (octet < 0 ? 0 : octet * 10) + digit;
        if (octet > 255) break;
      } else if (octet < 0 || (digit === digit && digit !== Char.DOT - Char.ZERO)) break;
      else {
        address = (address << 8) | octet;
        octet = -1;
        dots++;
      }
    }
    if (i <= host.length || dots !== 4) address = 0;
  }
  if (!accepted && !address && host) {
    // the platform's resolver, looked up per hostname (rare) rather than kept
    resolver = tracked._r;
    if (!resolver) {
      try {
        // the Linux build of Espruino has no Wifi module: require throws there, as on Node
        wifi = require("Wifi");
        resolver = wifi.getHostByName.bind(wifi);
      } catch (e) {
        try {
          wifi = require("dns");
          resolver = function (name: string, found: (ip?: string) => void): void {
            wifi.lookup(name, 4, function (err: unknown, ip: string) {
              found(err ? void 0 : ip);
            });
          };
        } catch (e2) {
          // no resolver: hostnames go to the module as they are, and the address stays unknown
        }
      }
    }
    if (resolver) {
      if (!standIns) standIns = makeStandIns();
      standIn = Object.create(standIns);
      standIn._q = [];
      copy = {};
      for (key in options) copy[key] = options[key];
      copy.servername = copy.servername || host;
      resolved = function (ip?: string): void {
        var queue = standIn._q,
          listeners: any[] = [], // event name, function, ...: the listeners of a socket that never came
          failure: any,
          name,
          given,
          j,
          k;
        if (!queue) return; // the resolver answered twice
        standIn._q = 0;
        try {
          if (!/^\d+\.\d+\.\d+\.\d+$/.test(ip as string)) throw new Error("cannot resolve " + host);
          copy.host = ip;
          standIn._s = connect.call(tracked, copy, callback); // an address now: connects and tracks
        } catch (e) {
          failure = e;
          standIn._s = {}; // from now on the stand-in's calls do nothing
        }
        for (j = 0; j < queue.length; j += 2) {
          name = queue[j];
          given = queue[j + 1];
          if (!failure) {
            try {
              standIn[name].apply(standIn, given);
            } catch (e) {
              // a replayed call fails as it would have on the socket; the others still run
            }
          } else if (name === "on" || name === "once" || name === "addListener") listeners.push(given[0], given[1]);
          else if (name === "prependListener") listeners.unshift(given[0], given[1]);
          else if (name === "removeAllListeners" || name === "removeListener" || name === "off") {
            for (k = listeners.length - 2; k >= 0; k -= 2) {
              if (name === "removeAllListeners" ? given[0] === void 0 || listeners[k] === given[0] : listeners[k] === given[0] && listeners[k + 1] === given[1]) {
                listeners.splice(k, 2);
                if (name !== "removeAllListeners") break;
              }
            }
          }
        }
        // the lookup failed: error, then close, as from a socket that could not connect
        for (j = 0; failure && j < 2; j++) {
          for (k = 0; k < listeners.length; k += 2) {
            if (listeners[k] === (j ? "close" : "error")) {
              try {
                listeners[k + 1].call(standIn, j ? true : failure);
              } catch (e) {
                // nothing is thrown out of a timer
              }
            }
          }
        }
        // the resolver may keep this function: it lets go of the stand-in, its socket and the caller's options
        // and callback
        standIn = copy = options = callback = given = first = second = 0;
      };
      setTimeout(function () {
        try {
          resolver(host, resolved);
        } catch (e) {
          resolved();
        }
      }, 0);
      return standIn;
    }
  }
  if (!accepted) socket = tracked._m.connect(options);
  // its slot, if one is free
  ticket = accepted ? Ticket.ESTABLISHED_WITHOUT_SLOT : Ticket.CONNECTING_WITHOUT_SLOT;
  if (accepted) S[At.EST]++;
  for (i = At.RING; i < S.length; i += Slot.SIZE) {
    if (!S[i + Slot.TICKET]) {
      S[i + Slot.ADDRESS] = address;
      S[i + Slot.PORTS] = ((+port || 0) << Ports.REMOTE) | localPort;
      ticket = S[At.SEQ] = S[At.SEQ] > Ticket.LAST ? 1 : S[At.SEQ] + 1;
      S[i + Slot.TICKET] = accepted ? ticket : -ticket;
      break;
    }
  }
  if (ticket < 0) S[At.OVF]++;
  socket._d = ticket;
  // the platform's write and end once, here; a socket with others of its own keeps them
  if (!platformWrite) platformWrite = socket.write;
  if (socket.write !== platformWrite) socket._w = socket.write;
  socket.write = tWrite;
  if (!platformEnd) platformEnd = socket.end;
  if (socket.end !== platformEnd) socket._e = socket.end;
  socket.end = tEnd;
  socket.on("connect", onSocket);
  socket.on("data", onSocket);
  socket.on("close", onSocket);
  // the callback goes on as a listener after ours: Espruino keeps a connect callback as the one "connect"
  // handler, and adding a listener beside it breaks its listener list (an assertion in Espruino 2v29). Node's
  // tls calls it once the handshake is done.
  if (callback) socket.on(socket.encrypted ? "secureConnect" : "connect", callback);
  return socket;
}

/** The prototype of hostname stand-ins, shared by every stand-in: the event methods of both platforms' sockets,
 * then the socket methods of Espruino's or Node's that the README documents. A stand-in holds its queue in _q
 * (method name, arguments, ...) until the name resolves, then its socket in _s. One function expression per
 * method, made by this one call, not one closure per method made by a factory, which kept each factory call's
 * scope: what the first hostname connection leaves held went from 256 to 184 JsVars (`npm run bench -- track`). */
function makeStandIns(): any {
  /** A stand-in's method `name`: queued while there is no socket, then the socket's own (destroy falls back to
   * end; a method the socket lacks does nothing). */
  function forward(standIn: any, name: string, args: any): any {
    var socket = standIn._s,
      own,
      result;
    if (!socket) {
      standIn._q.push(name, args);
      // what write and emit return when they succeed; the others chain
      return name === "write" || name === "emit" || standIn;
    }
    own = socket[name] || (name === "destroy" && socket.end);
    result = own ? own.apply(socket, args) : void 0;
    return result === socket ? standIn : result;
  }
  return {
    on: function (this: any): any {
      return forward(this, "on", arguments);
    },
    once: function (this: any): any {
      return forward(this, "once", arguments);
    },
    addListener: function (this: any): any {
      return forward(this, "addListener", arguments);
    },
    prependListener: function (this: any): any {
      return forward(this, "prependListener", arguments);
    },
    removeListener: function (this: any): any {
      return forward(this, "removeListener", arguments);
    },
    off: function (this: any): any {
      return forward(this, "off", arguments);
    },
    removeAllListeners: function (this: any): any {
      return forward(this, "removeAllListeners", arguments);
    },
    emit: function (this: any): any {
      return forward(this, "emit", arguments);
    },
    write: function (this: any): any {
      return forward(this, "write", arguments);
    },
    end: function (this: any): any {
      return forward(this, "end", arguments);
    },
    destroy: function (this: any): any {
      return forward(this, "destroy", arguments);
    },
    setNoDelay: function (this: any): any {
      return forward(this, "setNoDelay", arguments);
    },
    setKeepAlive: function (this: any): any {
      return forward(this, "setKeepAlive", arguments);
    },
    setTimeout: function (this: any): any {
      return forward(this, "setTimeout", arguments);
    },
    pause: function (this: any): any {
      return forward(this, "pause", arguments);
    },
    resume: function (this: any): any {
      return forward(this, "resume", arguments);
    },
  };
}

/** createServer([options][, onConnection]) of net or tls, and createSocket(type, onMessage?) of dgram. The
 * server or dgram socket gets its listen or bind, and close, wrapped by closures made here: many devices never
 * listen, and a function costs RAM on Espruino only while it exists. */
function open(this: any, first?: any, second?: any): any {
  // parameters, not `arguments`: on Espruino a nested function's `arguments` is its outer function's when that
  // one uses `arguments` too (the listen and close wrappers below use theirs)
  var mod = this._m,
    udp = !mod.createServer,
    bind = udp ? "bind" : "listen",
    table = udp ? At.UP : At.TP, // its port table in S
    port = 0, // its listening port, once known
    onConnection = typeof first === "function" ? first : typeof second === "function" ? second : 0,
    opened: any,
    listen: any, // the platform's listen or bind, and close
    close: any,
    accept = function (socket: any): void {
      try {
        connect(socket, port);
      } catch (e) {
        // never throw into the platform's accept path
      }
      // a plain test: Espruino 2v29 skips a statement that starts with a string literal right after a
      // try/catch, which is what terser makes of a typeof test here
      if (onConnection) onConnection(socket);
    },
    /** Records the listening port in the table (off: forgets it); a port not known yet (Node's listen(0) /
     * bind(0)) is read once listening (p undefined: the "listening" listener). The table's total stays exact;
     * a full table lists what it can. */
    record = function (p?: any, off?: number): void {
      var i;
      if (off) {
        p = port;
        port = 0;
      } else {
        if (p === void 0) p = opened.address();
        if (p && p.port) p = p.port;
        if (!(p > 0)) {
          opened.on("listening", record);
          return;
        }
        if (port) return;
        port = p;
      }
      if (!off || S[table]) S[table] += off ? -1 : 1;
      for (i = table + 1; i <= table + Ports.TABLE; i++) {
        if (S[i] === (off ? p : 0)) {
          S[i] = off ? 0 : p;
          break;
        }
      }
    };
  if (udp) opened = mod.createSocket(first, second);
  else opened = first && typeof first === "object" ? mod.createServer(first, accept) : mod.createServer(accept);
  listen = opened[bind];
  close = opened.close;
  opened[bind] = function (p: any): any {
    var result = listen.apply(opened, arguments);
    record(p || 0);
    return result;
  };
  opened.close = function (): any {
    if (port) record(0, 1);
    return close.apply(opened, arguments);
  };
  if (udp) {
    opened._w = opened.send;
    opened.send = tWrite;
    opened.on("message", onSocket);
  }
  return opened;
}

