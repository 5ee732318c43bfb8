// tinymqtt client: MQTT 3.1.1 over any transport with connect(options, onConnect) (Espruino's net or tls,
// Node's, a tracked one, a mock). Ours because no npm client fits Espruino: the npm `mqtt` package is ES2015+
// and tens of kilobytes, and Espruino's tinyMQTT (not on npm) has neither QoS 1 nor TLS options.
//
// Payloads and topics are byte strings inside (what Espruino's sockets carry); Uint8Array/Buffer payloads are
// converted once per publish. Packets awaiting an acknowledgement (QoS 1 PUBLISH, SUBSCRIBE, UNSUBSCRIBE) are
// kept, bounded by max_inflight, and sent again with DUP after `timeout` seconds and after a reconnect.
// One 1-second timer per connection drives keep-alive, acknowledgement timeouts and the CONNACK deadline.
// Errors reach callbacks, or the "error" event; nothing throws out of a socket or timer callback.
import { PUBLISH, PUBACK, SUBSCRIBE, UNSUBSCRIBE, PINGREQ, DISCONNECT, CONNECT, u16, str, packet, frame, head } from "./packet";

declare var Buffer: any;

/** Bytes of a payload as a byte string: strings as they are, Uint8Array/Buffer/ArrayBuffer converted. */
function bytes(m: any): string {
  return m == null
    ? ""
    : typeof m != "object"
      ? "" + m
      : typeof E != "undefined"
        ? E.toString(m)
        : Buffer.from(m).toString("latin1");
}

/** Calls an application callback (or emits) without letting it throw into the socket or timer. */
function safe(c: any, f: any, a?: any, b?: any): void {
  try {
    if (f) f.call(c, a, b);
  } catch (e) {
    c._err(e);
  }
}

// Pending entry: [packet, callback, seconds since sent, times sent, topic (SUBSCRIBE), qos (SUBSCRIBE)].
export function Client(this: any, server: string, options: any) {
  var c = this;
  c._h = server;
  c._o = options || {};
  c._p = {}; // packet id -> pending entry
  c._n = 0; // pending entries
  c._q = {}; // granted subscriptions: topic filter -> qos
  c._i = 0; // last packet id
  c._d = 0; // reconnect back-off, s (0: not backing off)
  c._c = 0; // 0 closed, 1 connecting, 2 connected
  c._s = null; // socket
  c._x = 0; // reconnect wanted
}

var P = Client.prototype;
// Espruino objects are event emitters already; on Node, borrow EventEmitter's methods.
if (!P.emit) (Object as any).setPrototypeOf(P, require("events").prototype);

P.connect = function () {
  var c = this,
    o = c._o,
    opts: any = {},
    s: any,
    k;
  clearTimeout(c._r);
  c._x = 1;
  if (c._s) return;
  for (k in o) opts[k] = o[k]; // TLS options (key, cert, ca, servername, ...) pass through untouched
  opts.host = c._h;
  opts.port = o.port || 1883;
  c._c = 1;
  c._b = "";
  c._rx = c._tx = c._pi = 0;
  c._t = setInterval(function () {
    c._tick();
  }, 1000);
  try {
    s = c._s = (o.transport || require("net")).connect(opts, function () {
      if (s === c._s)
        c._send(
          packet(
            CONNECT,
            str("MQTT") +
              String.fromCharCode(4, (o.username ? 128 : 0) | (o.password ? 64 : 0) | (o.clean_session === false ? 0 : 2)) +
              u16(o.keep_alive == null ? 60 : o.keep_alive) +
              str(o.client_id || "") +
              (o.username ? str(o.username) : "") +
              (o.password ? str(o.password) : ""),
          ),
        );
    });
    s.on("data", function (d: any) {
      c._data(s, d);
    });
    s.on("end", function () {
      if (s === c._s) c._down("connection closed");
    });
    s.on("close", function () {
      if (s === c._s) c._down("connection closed");
    });
    s.on("error", function (e: any) {
      if (s === c._s) {
        c._err(e);
        c._down(e && e.message ? e.message : "" + e);
      }
    });
  } catch (e) {
    // Espruino's tls.connect throws on a bad key or certificate
    c._err(e);
    c._down("" + e);
  }
};

/** Connection gone (or given up): tell the application, then reconnect after a back-off with jitter. */
P._down = function (why: string) {
  var c = this,
    o = c._o,
    s = c._s;
  clearInterval(c._t);
  c._s = null;
  c._c = 0;
  try {
    if (s) s.end();
  } catch (e) {
    // already closed
  }
  safe(c, c.emit, "disconnected", why);
  if (c._x && o.reconnect !== false) {
    c._d = Math.min(c._d ? c._d * 2 : o.reconnect_min || 1, o.reconnect_max || 60);
    c._r = setTimeout(function () {
      c.connect();
    }, c._d * (500 + Math.random() * 500));
  }
};

P.disconnect = function () {
  var c = this;
  c._x = 0;
  clearTimeout(c._r);
  if (c._s) {
    if (c._c > 1) c._send(packet(DISCONNECT, ""));
    c._down("disconnect()");
  }
};

P._err = function (e: any) {
  try {
    // Node's emitter throws an "error" nobody listens to
    if (!this.listenerCount || this.listenerCount("error")) this.emit("error", e);
  } catch (x) {
    // the application's error listener threw: nothing more to tell
  }
};

/** An error for callback cb, or the "error" event without one. */
P._fail = function (cb: any, text: string) {
  var e = new Error(text);
  if (cb) safe(this, cb, e);
  else this._err(e);
};

P._send = function (p: string) {
  this._tx = 0;
  try {
    this._s.write(p, "binary"); // "binary": Node writes the byte string as bytes; Espruino ignores it
  } catch (e) {
    this._down("write failed: " + e);
  }
};

/** A free packet id, or 0 when max_inflight packets already await an acknowledgement (unless forced). */
P._id = function (force?: boolean): number {
  var c = this;
  if (!force && c._n >= (c._o.max_inflight || 8)) return 0;
  do c._i = (c._i % 65535) + 1;
  while (c._p[c._i]);
  return c._i;
};

/** Keeps a packet until its acknowledgement; sends it now if connected, else at the next CONNACK. */
P._add = function (id: number, p: string, cb: any, topic?: string, qos?: number) {
  var e = (this._p[id] = [p, cb, 0, 0, topic, qos]);
  this._n++;
  if (this._c > 1) this._flush(e);
};

/** (Re)sends a pending packet; a PUBLISH sent before goes with DUP set. */
P._flush = function (e: any) {
  var p = e[0];
  e[2] = 0;
  this._send(e[3]++ && p.charCodeAt(0) >> 4 == 3 ? String.fromCharCode(p.charCodeAt(0) | 8) + p.substr(1) : p);
};

/** Removes the pending entry of id and returns it (undefined for an unknown id). */
P._ack = function (id: number) {
  var e = this._p[id];
  if (e) {
    delete this._p[id];
    this._n--;
  }
  return e;
};

P._tick = function () {
  var c = this,
    o = c._o,
    ka = o.keep_alive == null ? 60 : o.keep_alive,
    to = o.timeout || 10,
    k,
    e;
  c._rx++;
  c._tx++;
  c._pi++;
  if (c._c < 2) {
    if (c._rx >= to) c._down("no CONNACK within " + to + " s");
    return;
  }
  if (ka) {
    // silent for 1.5 keep-alive intervals: dead (MQTT 3.1.1, 3.1.2.10)
    if (c._rx >= ka * 1.5) return c._down("keep-alive timeout");
    if (c._tx >= ka / 2 || (c._rx >= ka / 2 && c._pi >= ka / 2)) {
      c._pi = 0;
      c._send(packet(PINGREQ, ""));
    }
  }
  for (k in c._p) {
    e = c._p[k];
    if (c._s && ++e[2] >= to) {
      if (e[3] > (o.retries == null ? 3 : o.retries)) {
        c._ack(k);
        c._fail(e[1], "no acknowledgement after " + e[3] + " tries");
      } else c._flush(e);
    }
  }
};

/** Socket data: appended to the receive buffer, whole packets taken off its front. */
P._data = function (s: any, d: any) {
  var c = this,
    n;
  if (s !== c._s) return;
  c._rx = 0;
  c._b += typeof d == "string" ? d : bytes(d);
  try {
    while ((n = frame(c._b, c._o.max_packet || 4096))) {
      if (n < 0) throw n < -1 ? "packet over max_packet" : "bad remaining length";
      var h = c._b.charCodeAt(0),
        b = c._b.substr(head, n - head);
      c._b = c._b.substr(n);
      c._packet(h, b);
      if (s !== c._s) return;
    }
  } catch (e) {
    c._err(new Error("protocol error: " + e));
    c._down("protocol error");
  }
};

/** One incoming packet: fixed header byte h, body b. Throws a reason on a protocol error. */
P._packet = function (h: number, b: string) {
  var c = this,
    t = h >> 4,
    l = b.length,
    id = (b.charCodeAt(0) << 8) | b.charCodeAt(1),
    e,
    k,
    n;
  if (t != 3 && h & 15) throw "bad flags";
  if ((t == 2) != (c._c < 2)) throw "unexpected packet type " + t;
  if (t == 2) {
    if (l != 2) throw "bad CONNACK";
    if ((n = b.charCodeAt(1))) {
      k =
        "connection refused: " +
        (",unacceptable protocol version,identifier rejected,server unavailable,bad user name or password,not authorized".split(",")[n] ||
          "code " + n);
      c._err(new Error(k));
      return c._down(k);
    }
    c._c = 2;
    c._d = 0;
    // a session the server kept still has the subscriptions; otherwise restore them
    if (!(b.charCodeAt(0) & 1))
      for (k in c._q) c._send(packet(SUBSCRIBE, u16(c._id(1)) + str(k) + String.fromCharCode(c._q[k])));
    for (k in c._p) c._flush(c._p[k]);
    safe(c, c.emit, "connected");
  } else if (t == 3) {
    n = id + 2;
    if ((h & 6) > 2 || n > l) throw "bad PUBLISH"; // QoS 2 is never granted: we subscribe with at most 1
    k = b.substr(2, id);
    if (h & 6) {
      id = (b.charCodeAt(n) << 8) | b.charCodeAt(n + 1);
      if ((n += 2) > l) throw "bad PUBLISH";
    }
    safe(c, c.emit, "message", { topic: k, message: b.substr(n) });
    if (h & 6) c._send(packet(PUBACK, u16(id)));
  } else if (t == 4 || t == 11) {
    if (l != 2) throw "bad ack";
    if ((e = c._ack(id))) {
      safe(c, e[1]);
      if (t == 4) safe(c, c.emit, "published");
    }
  } else if (t == 9) {
    if (l != 3) throw "bad SUBACK";
    n = b.charCodeAt(2);
    e = c._ack(id);
    if (n & 128) c._fail(e && e[1], "subscription refused" + (e ? ": " + e[4] : ""));
    else if (e) {
      c._q[e[4]] = e[5];
      safe(c, e[1], undefined, n);
    }
  } else if (t != 13 || l) throw "unexpected packet type " + t;
};

P.publish = function (topic: any, message: any, qos: any, cb?: any) {
  var c = this,
    r = 0,
    id = 0,
    p;
  if (typeof qos == "function") {
    cb = qos;
    qos = 0;
  }
  if (qos && typeof qos == "object") {
    r = qos.retain ? 1 : 0;
    qos = qos.qos;
  }
  qos = qos | 0;
  p =
    typeof topic != "string" || !topic || topic.length > 65535 || /[+#]/.test(topic)
      ? "invalid topic for publish: " + topic
      : qos > 1 || qos < 0
        ? "QoS " + qos + " not supported"
        : qos
          ? (id = c._id())
            ? ""
            : "too many in flight"
          : c._c < 2
            ? "not connected"
            : "";
  if (p) return c._fail(cb, p);
  p = packet(PUBLISH | (qos << 1) | r, str(topic) + (qos ? u16(id) : "") + bytes(message));
  if (qos) return c._add(id, p, cb);
  c._send(p);
  safe(c, cb);
  safe(c, c.emit, "published");
};

P.subscribe = function (topic: any, qos: any, cb?: any) {
  var id = 0;
  if (typeof qos == "function") {
    cb = qos;
    qos = 0;
  }
  qos = qos ? 1 : 0; // QoS 2 is asked as 1: this client does not do QoS 2
  if (typeof topic != "string" || !topic || topic.length > 65535) return this._fail(cb, "invalid topic filter: " + topic);
  if (!(id = this._id())) return this._fail(cb, "too many in flight");
  this._add(id, packet(SUBSCRIBE, u16(id) + str(topic) + String.fromCharCode(qos)), cb, topic, qos);
};

P.unsubscribe = function (topic: any, cb?: any) {
  var id = this._id();
  delete this._q[topic];
  if (!id) return this._fail(cb, "too many in flight");
  this._add(id, packet(UNSUBSCRIBE, u16(id) + str("" + topic)), cb);
};
