// tinymqtt client: MQTT 3.1.1 over any transport with connect(options, onConnect) (Espruino's net or tls,
// Node's, a tracked one, a mock). Ours because no npm client fits Espruino: the npm `mqtt` package is ES2015+
// and tens of kilobytes, and Espruino's tinyMQTT (not on npm) has neither QoS 1 nor TLS options.
//
// RAM is the design constraint: on Espruino every function that exists costs about 8 variables plus one per
// named parameter, every variable and property one or two, while code stays in flash (bench/tinymqtt.bench.ts
// measures it). So:
// - The module holds nothing but create(). The client's state lives in create()'s closure (local names minify
//   to one letter), shared by two helpers (link: the connection, and put: the packets awaiting an
//   acknowledgement) and the five methods; one more closure per connection takes every event of its socket.
//   Functions read their arguments from `arguments` (locals, free at rest) instead of named parameters; but
//   create() itself must not use `arguments`: in Espruino 2v29 a closure's `arguments` then resolves to its
//   parent's (function f(){arguments; return function(){return arguments[0]}} f(1)(2) gives 1).
// - Packets awaiting an acknowledgement (QoS 1 PUBLISH, SUBSCRIBE, UNSUBSCRIBE) sit in one flat array, SIZE
//   fields each, only while they wait. A QoS 1 PUBLISH keeps its packet id and a reference to the caller's
//   bytes (no copy), and is written in two parts (header, topic and id; then the payload) each time it is sent.
// - Subscriptions live in one object (topic filter -> qos). The client alone restores them after a reconnect,
//   with at most one SUBSCRIBE per topic waiting, and those do not count against max_inflight.
// - One timer handle: a 1-second interval while a connection is open (keep-alive, acknowledgement timeouts,
//   the CONNACK deadline, the back-off reset), else the reconnect timeout. It is zeroed when its timer fires or
//   is cleared: Espruino reuses timer ids, so a stale handle would cancel someone else's timer.
// - Espruino writes a Uint8Array to a socket as "1,2,3", so bytes go through E.toString when written. On Node
//   a packet goes as one Buffer.
// - A packet is sent at most 1 + `retries` times in all, across reconnects too, then its callback gets an
//   error. The back-off returns to reconnect_min only once a connection has stayed up UP_RESET seconds, so a
//   broker that accepts the connection and drops it at once (AWS IoT on a publish its policy denies) is not
//   hammered.
// Errors go to the callback, or else the "error" event; nothing throws out of a socket or timer callback.
import { CONNECT, CONNACK, PUBLISH, PUBACK, SUBSCRIBE, SUBACK, UNSUBSCRIBE, PINGREQ, DISCONNECT, RETAIN, QOS1, QOS_MASK, DUP } from "./packet";

declare var Buffer: any;

/** Fields of a pending entry in the flat array q. */
var HEAD = 0, // fixed header byte as first sent (type and flags)
  ID = 1, // packet id
  TOPIC = 2, // topic (filter)
  DATA = 3, // PUBLISH: the caller's message (string or bytes); SUBSCRIBE: the qos asked
  CB = 4, // the caller's callback; null for a subscription being restored
  TRIES = 5, // times sent
  AGE = 6, // seconds since last sent
  SIZE = 7;

/** Connection states; while connected, the state counts the seconds since the CONNACK on from CONNECTED. */
var CLOSED = 0,
  CONNECTING = 1,
  CONNECTED = 2;

/** Seconds a connection must stay up before the back-off returns to reconnect_min. */
var UP_RESET = 30;

/** Remaining length of each packet type a server may send, by type (a digit; "-": a type it may not send).
 * PUBLISH (3) varies. */
var LENGTHS = "--2-2----3-2-0--";

export function create(server: string, o?: any): any {
  o = o || {};
  // the options go to transport.connect as they are (TLS key, cert, ca, servername, ...), with host and port
  o.host = server;
  o.port = o.port || 1883;
  var c: any = {},
    q: any[] = [], // pending entries, SIZE fields each
    subs: any = {}, // topic filter -> qos asked: restored after a reconnect
    lastId = 0,
    backoff = -1, // seconds of the last reconnect wait, 0 after a connection that stayed up; -1 while no
    // connection is wanted (before connect(), after disconnect()): no reconnect then
    state = CLOSED,
    sock: any = null,
    buf = "", // received bytes not yet parsed: at most max_packet plus one data event
    rx = 0, // seconds since something was received
    timer: any = 0; // the interval while a socket is open, else the reconnect timeout; 0: none
  // Espruino objects are event emitters already; Node's are not
  if (!c.emit) c = new (require("events"))();

  /** The client's one helper for its connection and the application (one function costs less RAM than four):
   * - link() is the clock: a second passed (the interval), or the reconnect timeout fired (no socket then).
   * - link(h, body, m) writes a packet: header byte h, then body, then the payload m (a string or bytes, as
   *   it is). Nothing is written without a socket; a write that throws ends the connection.
   * - link(why) ends the connection (lost, or given up): the application is told, and a reconnect follows
   *   after a back-off with jitter.
   * - link(f, a, b) calls the application without letting it throw: f a callback (called with a, b; a string
   *   a is an error's message: it gets an Error), or c.emit (a the event, b its argument); f missing: the
   *   "error" event with a. What f throws becomes an "error" event. (Node's emitter throws an "error" nobody
   *   listens to: not emitted then.) */
  function link(): void;
  function link(why: string): void;
  function link(h: number, body: string, m?: any): void;
  function link(f: any, a: any, b?: any): void;
  function link(): void {
    var chr = String.fromCharCode,
      a = arguments[0],
      b = arguments[1],
      m = arguments[2],
      ka = o.keep_alive == null ? 60 : o.keep_alive,
      timeout = o.timeout || 10,
      s = sock,
      size,
      n,
      i;
    if (typeof a == "number") {
      size = (m && (m.byteLength || m.length)) | 0; // a string, or bytes
      n = b.length + size;
      a = chr(a);
      // remaining length: 7 bits a byte, least significant first
      do {
        i = n & 127;
        n >>= 7;
        a += chr(n ? i | 128 : i);
      } while (n);
      try {
        // Espruino: header and body, then the payload as its own write (no copy of the caller's bytes into a
        // string; bytes only as E.toString gives them: it writes a Uint8Array as "1,2,3"). Node would write a
        // string as UTF-8, so it gets one Buffer (two small writes would wait on each other: Nagle).
        if (s)
          if (typeof Buffer != "undefined") s.write(Buffer.concat([Buffer.from(a + b, "latin1"), Buffer.from(m || "", "latin1")]));
          else {
            s.write(a + b);
            if (size) s.write(typeof m == "string" ? m : E.toString(m));
          }
      } catch (e) {
        link("write failed: " + e);
      }
    } else if (typeof a == "string") {
      // (closed already: an application callback called disconnect() before the reason that ended it is told)
      if (state == CLOSED) return;
      if (timer) clearInterval(timer);
      timer = 0;
      sock = null;
      state = CLOSED;
      try {
        if (s) s.end();
      } catch (e) {
        // already closed
      }
      link(c.emit, "disconnected", a);
      // (a "disconnected" listener may have called connect() or disconnect())
      if (backoff >= 0 && !sock && o.reconnect !== false) {
        backoff = Math.min(backoff ? backoff * 2 : o.reconnect_min || 1, o.reconnect_max || 60);
        timer = setTimeout(link, backoff * (500 + Math.random() * 500));
      }
    } else if (arguments.length) {
      if (a != c.emit && typeof b == "string") b = new Error(b);
      try {
        if (!a) link(c.emit, "error", b);
        else if (a != c.emit || b != "error" || !c.listenerCount || c.listenerCount(b)) a.call(c, b, m);
      } catch (e) {
        if (a != c.emit || b != "error") link(c.emit, "error", e);
      }
    } else if (state == CLOSED) {
      timer = 0; // it fired
      c.connect();
    } else if ((rx++, state == CONNECTING)) {
      if (rx >= timeout) link("no CONNACK");
    } else {
      if (++state >= CONNECTED + UP_RESET) backoff = 0;
      // silent for 1.5 keep-alive intervals: dead (MQTT 3.1.1, 3.1.2.10)
      if (ka && rx >= ka * 1.5) return link("keep-alive timeout");
      // a PINGREQ every half interval: the server hears from us in time, and its answer shows it is there
      if (ka && !((state - CONNECTED) % Math.ceil(ka / 2))) link(PINGREQ << 4, "");
      // a callback of a dropped entry may disconnect, or add entries (at the end, sent already)
      for (i = 0, n = q.length; i < n && state >= CONNECTED; )
        if (++q[i + AGE] < timeout || put(i)) i += SIZE;
        else n -= SIZE;
    }
  }

  /** put(i) sends pending entry i (again: a PUBLISH with DUP); or, sent 1 + retries times already, drops it and
   * gives its callback (else the "error" event) the error. put(-1, h, topic, data, cb) first adds a packet
   * (header h; cb null for a subscription being restored, which does not count against max_inflight) if there is
   * room, else gives cb the error; it is sent now if connected. Returns 1 while the entry is kept. */
  function put(i: number, h?: number, topic?: string, data?: any, cb?: any): number;
  function put(): number {
    var chr = String.fromCharCode,
      i = arguments[0],
      cb = arguments[4],
      n = 0,
      h,
      topic,
      id;
    if (i < 0) {
      if (cb !== null) {
        for (i = 0; i < q.length; i += SIZE) if (q[i + CB] !== null) n++;
        if (n >= (o.max_inflight || 8)) {
          link(cb, "too many in flight");
          return 0;
        }
      }
      // a packet id not in use
      do for (lastId = (lastId % 65535) + 1, i = 0; i < q.length && q[i + ID] != lastId; i += SIZE);
      while (i < q.length);
      q.push(arguments[1], lastId, arguments[2], arguments[3], cb, 0, 0);
      if (state < CONNECTED) return 1;
    }
    h = q[i + HEAD];
    topic = q[i + TOPIC];
    topic = chr(topic.length >> 8, topic.length & 255) + topic;
    id = chr(q[i + ID] >> 8, q[i + ID] & 255);
    if ((n = q[i + TRIES]) > (o.retries == null ? 3 : o.retries)) {
      cb = q[i + CB];
      q.splice(i, SIZE);
      link(cb, "no acknowledgement after " + n + " tries");
      return 0;
    }
    q[i + AGE] = 0;
    q[i + TRIES]++;
    if (h >> 4 == PUBLISH) link(n ? h | DUP : h, topic + id, q[i + DATA]);
    else link(h, id + topic + (h >> 4 == SUBSCRIBE ? chr(q[i + DATA]) : ""));
    return 1;
  }

  c.connect = function () {
    var s: any;
    if (backoff < 0) backoff = 0;
    if (sock) return;
    if (timer) clearTimeout(timer); // a reconnect was waiting
    state = CONNECTING;
    buf = "";
    rx = 0;
    timer = setInterval(link, 1000);
    /** ev(d): every event of this socket: the transport's connect callback (nothing, or the socket on
     * Espruino), data (a string, or a Buffer on Node), close (a boolean, as Node and Espruino give it), error
     * (an Error). Whole packets are taken off the front of the receive buffer and handled; a protocol error
     * (thrown as its reason) ends the connection. */
    function ev() {
      var chr = String.fromCharCode,
        d = arguments[0],
        ka = o.keep_alive == null ? 60 : o.keep_alive,
        n,
        m,
        i,
        h,
        body,
        type,
        len,
        id,
        k,
        f,
        x,
        str;
      if (s !== sock) return;
      if (typeof d == "boolean") return link("connection closed");
      if (d && d.message) {
        link(c.emit, "error", d);
        return link(d.message);
      }
      if (d == null || (typeof d != "string" && d.length == null)) {
        // connected: CONNECT
        str = function (v: string): string {
          return chr(v.length >> 8, v.length & 255) + v;
        };
        return link(
          CONNECT << 4,
          str("MQTT") +
            chr(4, (o.username ? 128 : 0) | (o.password ? 64 : 0) | (o.clean_session === false ? 0 : 2), ka >> 8, ka & 255) +
            str(o.client_id || "") +
            (o.username ? str(o.username) : "") +
            (o.password ? str(o.password) : ""),
        );
      }
      rx = 0;
      buf += typeof d == "string" ? d : d.toString("latin1");
      try {
        while (s === sock) {
          // remaining length; a packet over max_packet ends the connection as soon as its header is here
          for (n = 0, m = 1, i = 1; ; m *= 128) {
            if (i > 4) throw "bad length";
            if (i >= buf.length) return;
            x = buf.charCodeAt(i++);
            n += (x & 127) * m;
            if (!(x & 128)) break;
          }
          if ((n += i) > (o.max_packet || 4096)) throw "over max_packet";
          if (n > buf.length) return;
          h = buf.charCodeAt(0);
          body = buf.substr(i, n - i);
          buf = buf.substr(n);
          type = h >> 4;
          len = body.length;
          id = (body.charCodeAt(0) << 8) | body.charCodeAt(1);
          // a type the server may not send, flags where none are allowed, a wrong length, CONNACK first and only
          if ((type != PUBLISH && (h & 15 || (LENGTHS.charAt(type) as any) != len)) || (type == CONNACK) != (state == CONNECTING)) throw "bad packet " + h;
          if (type == CONNACK) {
            if ((n = body.charCodeAt(1))) {
              k =
                "connection refused: " +
                (",unacceptable protocol version,identifier rejected,server unavailable,bad user name or password,not authorized".split(",")[n] ||
                  "code " + n);
              link(null, k);
              return link(k);
            }
            state = CONNECTED;
            // what waited goes again (or fails, sent too often already)
            for (i = 0, n = q.length; i < n && state >= CONNECTED; )
              if (put(i)) i += SIZE;
              else n -= SIZE;
            // a session the server kept has the subscriptions; otherwise restore those without a SUBSCRIBE waiting
            if (!(body.charCodeAt(0) & 1))
              for (k in subs) {
                for (i = 0; i < q.length && !(q[i + HEAD] >> 4 == SUBSCRIBE && q[i + TOPIC] == k); i += SIZE);
                if (i >= q.length && state >= CONNECTED) put(-1, (SUBSCRIBE << 4) | QOS1, k, subs[k], null);
              }
            if (state >= CONNECTED) link(c.emit, "connected");
          } else if (type == PUBLISH) {
            m = h & QOS_MASK;
            n = id + 2 + m; // topic length, topic, packet id if QoS 1
            if (m > QOS1 || n > len) throw "bad PUBLISH"; // QoS 2 is never granted: we subscribe with at most 1
            link(c.emit, "message", { topic: body.substr(2, id), message: body.substr(n) });
            // not if a listener disconnected (and maybe connected again): never on a closed or a new connection
            if (m && s === sock) link(PUBACK << 4, body.substr(n - 2, 2));
          } else if (type != 13) {
            // PUBACK, SUBACK, UNSUBACK (PINGRESP: nothing to do): each acknowledges its own packet type
            for (i = 0; i < q.length && q[i + ID] != id; i += SIZE);
            if (i < q.length && q[i + HEAD] >> 4 == type - 1) {
              f = q[i + CB];
              k = q[i + TOPIC];
              x = q[i + DATA];
              q.splice(i, SIZE);
              if (type == SUBACK) {
                if ((n = body.charCodeAt(2)) & 128) {
                  delete subs[k];
                  link(f, "subscription refused: " + k);
                } else {
                  subs[k] = x;
                  if (f) link(f, undefined, n);
                }
              } else {
                if (f) link(f, undefined);
                if (type == PUBACK) link(c.emit, "published");
              }
            }
          }
        }
      } catch (e) {
        link(null, "protocol error: " + e);
        link("protocol error");
      }
    }
    try {
      s = sock = (o.transport || require("net")).connect(o, ev);
      s.on("data", ev);
      s.on("close", ev);
      s.on("error", ev);
    } catch (e) {
      // Espruino's tls.connect throws on a bad key or certificate, its net.connect when refused at once
      link(c.emit, "error", e);
      link("" + e);
    }
  };

  c.disconnect = function () {
    backoff = -1;
    if (sock) {
      if (state >= CONNECTED) link(DISCONNECT << 4, "");
      link("disconnect()");
    } else if (timer) {
      clearTimeout(timer); // a reconnect was waiting
      timer = 0;
    }
  };

  /** publish(topic, message[, qos | {qos, retain}[, cb]]) */
  c.publish = function () {
    var topic = arguments[0],
      message = arguments[1],
      qos = arguments[2],
      cb = arguments[3],
      retain = 0,
      err;
    if (typeof qos == "function") {
      cb = qos;
      qos = 0;
    }
    if (qos && typeof qos == "object") {
      retain = qos.retain ? RETAIN : 0;
      qos = qos.qos;
    }
    qos = qos | 0;
    // kept as it is (a QoS 1 message by reference until acknowledged): a string, Uint8Array, Buffer, ArrayBuffer
    if (typeof message != "object") message = "" + message;
    else if (!message) message = "";
    err =
      typeof topic != "string" || !topic || topic.length > 65535 || /[+#]/.test(topic)
        ? "invalid topic " + topic
        : qos > 1 || qos < 0
          ? "QoS " + qos + " not supported"
          : !qos && state < CONNECTED
            ? "not connected"
            : "";
    if (err) link(cb, err);
    else if (qos) put(-1, (PUBLISH << 4) | QOS1 | retain, topic, message, cb);
    else {
      link((PUBLISH << 4) | retain, String.fromCharCode(topic.length >> 8, topic.length & 255) + topic, message);
      if (cb) link(cb, undefined);
      link(c.emit, "published");
    }
  };

  /** subscribe(topic[, qos[, cb]]): QoS 2 is asked as 1 (this client does not do QoS 2) */
  c.subscribe = function () {
    var topic = arguments[0],
      qos = arguments[1],
      cb = arguments[2];
    if (typeof qos == "function") {
      cb = qos;
      qos = 0;
    }
    if (typeof topic != "string" || !topic || topic.length > 65535) link(cb, "invalid topic " + topic);
    else put(-1, (SUBSCRIBE << 4) | QOS1, topic, qos ? 1 : 0, cb);
  };

  /** unsubscribe(topic[, cb]): the topic is forgotten (not restored any more) once the UNSUBSCRIBE is accepted */
  c.unsubscribe = function () {
    var topic = arguments[0];
    if (put(-1, (UNSUBSCRIBE << 4) | QOS1, "" + topic, 0, arguments[1])) delete subs[topic];
  };

  return c;
}
