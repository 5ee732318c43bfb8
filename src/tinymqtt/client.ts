// tinymqtt client: MQTT 3.1.1 over any transport with connect(options, onConnect) (Espruino's net or tls,
// Node's, a tracked one, a mock). Ours because no npm client fits Espruino: the npm `mqtt` package is ES2015+
// and tens of kilobytes, and Espruino's tinyMQTT (not on npm) has neither QoS 1 nor TLS options.
//
// RAM is the design constraint: on Espruino every function that exists costs about 8 variables, every variable
// and property one or two, while code stays in flash (bench/tinymqtt.bench.ts measures it). So:
// - The module holds nothing but create(). The client's state lives in create()'s closure (local names minify
//   to one letter), shared by one helper, link() (the connection, the packets awaiting an acknowledgement, the
//   application's callbacks) and the five methods; one more closure per connection takes every event of its
//   socket. What a call costs while it runs counts too: the peak of a QoS 1 publish is set by it (measured:
//   a call with `arguments` read into 3 locals costs 13 variables, with 3 named parameters 2; a function made
//   at each call 8; every local 1). So link() and the socket's closure, called on every packet, take named
//   parameters (1 variable each at rest), make no function per call, and link() writes a packet in the same
//   call that makes it. The five methods, called by the application only, read `arguments` (free at rest);
//   create() itself must not use `arguments`: in Espruino 2v29 a closure's `arguments` then resolves to its
//   parent's (function f(){arguments; return function(){return arguments[0]}} f(1)(2) gives 1).
// - Packets awaiting an acknowledgement (QoS 1 PUBLISH, SUBSCRIBE, UNSUBSCRIBE) sit in one object, by packet
//   id, as small arrays (Field), only while they wait. A QoS 1 PUBLISH keeps a reference to the caller's bytes
//   (no copy), and is written in two parts (header, topic and id; then the payload) each time it is sent.
// - Subscriptions live in one object (topic filter -> qos). The client alone restores them after a reconnect,
//   with at most one SUBSCRIBE per topic waiting, and those do not count against max_inflight.
// - One timer handle: a 1-second interval while a connection is open (keep-alive, acknowledgement timeouts,
//   the CONNACK deadline, the back-off reset), else the reconnect timeout. It is zeroed when its timer fires or
//   is cleared: Espruino reuses timer ids, so a stale handle would cancel someone else's timer.
// - Espruino writes a Uint8Array to a socket as "1,2,3", so bytes go through E.toString when written. On Node
//   a packet goes as one Buffer.
// - A packet is sent at most 1 + `retries` times in all, across reconnects too, then its callback gets an
//   error. The back-off returns to reconnect_min only once a connection has stayed up Default.UP_RESET seconds,
//   so a broker that accepts the connection and drops it at once (AWS IoT on a publish its policy denies) is
//   not hammered.
// - Espruino 2v29 stops a for-in loop whose current key is deleted: loops that may drop entries walk a copy of
//   the keys.
// Errors go to the callback, or else the "error" event; nothing throws out of a socket or timer callback.
import { Type, Flag, Connect } from "./packet";

declare var Buffer: any, global: any;

/** Fields of a pending entry: pending[packet id] = [HEAD, TOPIC, DATA, CB, TRIES, AGE]. */
const enum Field {
  HEAD = 0, // fixed header byte as first sent (type and flags)
  TOPIC = 1, // topic (filter)
  DATA = 2, // PUBLISH: the caller's message (string or bytes); SUBSCRIBE: the qos asked
  CB = 3, // the caller's callback; null for a subscription being restored
  TRIES = 4, // times sent
  AGE = 5, // seconds since last sent
}

/** Connection states; while connected, the state counts the seconds since the CONNACK on from CONNECTED. */
const enum State {
  CLOSED = 0,
  CONNECTING = 1,
  CONNECTED = 2,
}

/** Option defaults (README "MQTT client"), and the seconds a connection must stay up before the back-off
 * returns to reconnect_min. */
const enum Default {
  PORT = 1883,
  KEEP_ALIVE = 60,
  TIMEOUT = 10,
  RETRIES = 3,
  MAX_PACKET = 4096,
  MAX_INFLIGHT = 8,
  RECONNECT_MIN = 1,
  RECONNECT_MAX = 60,
  UP_RESET = 30,
}

/** Fixed header bytes the client writes. */
const enum Head {
  PUBLISH = Type.PUBLISH << 4,
  SUBSCRIBE = (Type.SUBSCRIBE << 4) | Flag.QOS1,
  UNSUBSCRIBE = (Type.UNSUBSCRIBE << 4) | Flag.QOS1,
}

/** What link() does with a number given alone, when it is not a packet id (those start at 1). */
const enum Op {
  CONNECT = -1, // the transport connected: CONNECT goes
  RESEND = -2, // resend what waits too long; link(Op.RESEND, 1): all that waits
}

/** Remaining length of each packet type a server may send, by type (a digit; "-", or past the end: a type it may
 * not send). PUBLISH (3) varies. */
var LENGTHS = "--2-2----3-2-0";

export function create(server: string, o?: any): any {
  o = o || {};
  // the options go to transport.connect as they are (TLS key, cert, ca, servername, ...), with host and port
  o.host = server;
  o.port = o.port || Default.PORT;
  var c: any = {},
    pending: any = {}, // packet id -> entry (Field) awaiting its acknowledgement
    subs: any = {}, // topic filter -> qos asked: restored after a reconnect
    lastId = 0,
    backoff = -1, // seconds of the last reconnect wait, 0 after a connection that stayed up; -1 while no
    // connection is wanted (before connect(), after disconnect()): no reconnect then
    state = State.CLOSED,
    // set by connect():
    sock: any, // the socket; 0 or undefined: none
    buf: any, // received bytes not yet parsed: at most max_packet plus one data event
    rx: any, // seconds since something was received
    timer: any, // the interval while a socket is open, else the reconnect timeout; 0 or undefined: none
    keepAlive = o.keep_alive == null ? Default.KEEP_ALIVE : o.keep_alive,
    timeout = o.timeout || Default.TIMEOUT;
  // Espruino objects are event emitters already; Node's are not
  if (!c.emit) c = new (require("events"))();

  /** The client's one helper (one function costs less RAM than several), by its arguments:
   * - link() is the clock: a second passed (the interval), or the reconnect timeout fired (no socket then).
   * - link(why[, err]) ends the connection (lost, or given up): err (an Error or its message) goes to the
   *   "error" event first, then the application is told, and a reconnect follows after a back-off with jitter.
   * - link(c, event, arg) emits an event on the client, and link(f, err, arg) calls the callback f (a string
   *   err is an error's message: it gets an Error), neither letting the application throw: what it throws
   *   becomes an "error" event. f missing: the "error" event with err, if any.
   * - link(h, body, m) writes a packet: header byte h, then the string body, then the payload m (a string or
   *   bytes, as it is). Nothing is written without a socket; a write that throws ends the connection.
   * - link(Op.CONNECT) writes the CONNECT packet; link(Op.RESEND[, all]) sends pending entries again.
   * - link(h, args) asks for a packet for the application: h the header of a PUBLISH, SUBSCRIBE or
   *   UNSUBSCRIBE (Head), args the caller's arguments: (topic, message[, qos | {qos, retain}[, cb]]) for a
   *   PUBLISH, (topic[, qos[, cb]]) for the others (an UNSUBSCRIBE's (topic, cb) reads the same), cb null for
   *   a subscription being restored (it does not count against max_inflight). A QoS 0 PUBLISH is written now
   *   (or refused while disconnected); the others become a pending entry if there is room (else cb gets the
   *   error), sent now if connected.
   * - link(id) sends pending entry id (again: a PUBLISH with DUP); or, sent 1 + retries times already, drops
   *   it and gives its callback (else the "error" event) the error. */
  function link(): void;
  function link(why: string, err?: any): void;
  function link(f: any, err?: any, arg?: any): void;
  function link(h: number, body: string, m?: any): void;
  function link(op: Op, all?: number): void;
  function link(h: number, args: any): void;
  function link(id: number): void;
  function link(a?: any, b?: any, m?: any): void {
    var chr = String.fromCharCode,
      s = sock,
      h = a,
      pub = h == Head.PUBLISH, // asked for: a PUBLISH (a pending entry: set below)
      entry,
      data,
      qos,
      cb,
      n,
      i,
      id = ""; // a pending entry's packet id, as written
    if (a === undefined) {
      // the clock (a timer gives no argument; a callback the caller did not give is false: see below)
      if (state == State.CLOSED) {
        timer = 0; // it fired
        c.connect();
      } else if ((rx++, state == State.CONNECTING)) {
        if (rx >= timeout) link("no CONNACK");
      } else {
        if (++state >= State.CONNECTED + Default.UP_RESET) backoff = 0;
        if (keepAlive) {
          // silent for 1.5 keep-alive intervals: dead (MQTT 3.1.1, 3.1.2.10)
          if (rx >= keepAlive * 1.5) return link("keep-alive timeout");
          // a PINGREQ every half interval (in whole seconds, rounded up): the server hears from us in time,
          // and its answer shows it is there
          if (!((state - State.CONNECTED) % ((keepAlive + 1) >> 1))) link(Type.PINGREQ << 4, "");
        }
        link(Op.RESEND);
      }
    } else if (typeof a == "string") {
      // end the connection (an error first, if any)
      link(null, b);
      // the interval, or a reconnect that was waiting (disconnect() while closed: nothing else to do then)
      if (timer) clearInterval(timer);
      timer = 0;
      // (closed already: an application callback called disconnect() before the reason that ended it is told)
      if (state == State.CLOSED) return;
      sock = state = State.CLOSED; // (no socket)
      try {
        if (s) s.end();
      } catch (e) {
        // already closed
      }
      link(c, "disconnected", a);
      // (a "disconnected" listener may have called connect() or disconnect())
      if (backoff >= 0 && !sock && o.reconnect !== false) {
        backoff = Math.min(backoff ? backoff * 2 : o.reconnect_min || Default.RECONNECT_MIN, o.reconnect_max || Default.RECONNECT_MAX);
        timer = setTimeout(link, backoff * 500 * (1 + Math.random()));
      }
    } else if (typeof a != "number") {
      // call the application
      if (a != c && typeof b == "string") b = Error(b);
      try {
        // (Node's emitter throws an "error" nobody listens to: dropped here)
        if (a) (a == c ? c.emit : a).call(c, b, m);
        else if (b) link(c, "error", b);
      } catch (e) {
        if (a != c || b != "error") link(c, "error", e);
      }
    } else {
      // a packet to write: given (h, body), or made here; it is written at the end of this branch, in this same
      // call (no nested call: each call of link() costs some 30 variables while it runs)
      if (typeof b != "string")
        if (a == Op.CONNECT) {
          // the protocol name and level, the flags, the keep-alive, then the client id, user name and password,
          // each a string after its length (two bytes, most significant first: MQTT 3.1.1, 1.5.2 and 1.5.3)
          h = Type.CONNECT << 4;
          b =
            "\0\x04MQTT" +
            chr(
              Connect.LEVEL,
              (o.username ? Connect.USERNAME : 0) | (o.password ? Connect.PASSWORD : 0) | (o.clean_session === false ? 0 : Connect.CLEAN_SESSION),
              keepAlive >> 8,
              keepAlive & 255,
            );
          for (n = [o.client_id || "", o.username, o.password], i = 0; i < 3; i++) if (!i || n[i]) b += chr(n[i].length >> 8, n[i].length & 255) + n[i];
        } else if (a < 0) {
          // Op.RESEND
          // a callback of a dropped entry may disconnect, or add entries (sent already): the ids are copied first
          // (nothing drops an entry but its own link(id), so every copied id is still pending when reached)
          for (n = Object.keys(pending), i = 0; i < n.length && state >= State.CONNECTED; i++)
            if (b || ++pending[n[i]][Field.AGE] >= timeout) link(+n[i]);
          return;
        } else {
          if (b) {
            // asked for by the application
            m = b[0]; // the topic
            data = b[1]; // a PUBLISH's message
            n = pub ? 2 : 1;
            qos = b[n];
            cb = b[n + 1];
            // no callback: false, not undefined (link(undefined) is the clock); null marks a subscription being restored
            if (cb === undefined) cb = false;
            if (typeof qos == "function") {
              cb = qos;
              qos = 0;
            }
            if (qos && typeof qos == "object") {
              if (qos.retain && pub) h |= Flag.RETAIN;
              qos = qos.qos;
            }
            qos |= 0;
            if (!pub) data = qos && 1; // the qos asked: 2 is asked as 1 (this client does not do QoS 2)
            else if (qos & ~1) return link(cb, "QoS " + qos + " not supported");
            else {
              h |= qos * Flag.QOS1;
              // kept as it is (a QoS 1 message by reference until acknowledged): a string, Uint8Array, Buffer,
              // ArrayBuffer; not "" + a string, which would be a copy on Espruino
              data = typeof data == "string" || typeof data == "object" ? data || "" : "" + data;
            }
            if (typeof m != "string" || !m || m.length > 65535 || (pub && /[+#]/.test(m)))
              return link(cb, "invalid topic " + m);
            a = 0; // no entry
            if (h & Flag.QOS_MASK) {
              n = 0;
              for (i in pending) if (pending[i][Field.CB] !== null) n++;
              if (cb !== null && n >= (o.max_inflight || Default.MAX_INFLIGHT)) return link(cb, "too many in flight");
              // a packet id not in use
              do lastId = (lastId % 65535) + 1;
              while (pending[lastId]);
              pending[lastId] = [h, m, data, cb, 0, 0];
              // an unsubscribed topic is forgotten: not restored any more
              if (h == Head.UNSUBSCRIBE) delete subs[m];
              if (state < State.CONNECTED) return;
              a = lastId;
            } else if (state < State.CONNECTED) return link(cb, "not connected");
          }
          if (a) {
            // (re)send pending entry a, unless sent too often already
            entry = pending[a];
            if ((n = entry[Field.TRIES]) > (o.retries == null ? Default.RETRIES : o.retries)) {
              delete pending[a];
              return link(entry[Field.CB], "no acknowledgement after " + n + " tries");
            }
            entry[Field.AGE] = 0;
            entry[Field.TRIES]++;
            h = entry[Field.HEAD];
            pub = h >> 4 == Type.PUBLISH;
            id = chr(a >> 8, a & 255);
            m = entry[Field.TOPIC];
            data = entry[Field.DATA];
            if (n && pub) h |= Flag.DUP;
          }
          // the body: a PUBLISH has the topic, then its packet id if QoS 1; a SUBSCRIBE or UNSUBSCRIBE the packet
          // id, then the topic filter (and the qos asked: SUBSCRIBE)
          b = chr(m.length >> 8, m.length & 255) + m;
          if (pub) b += id;
          else {
            b = id + b + (h == Head.SUBSCRIBE ? chr(data) : "");
            data = 0; // no payload
          }
        }
      // write it: the header byte, the remaining length (7 bits a byte, least significant first), the body b,
      // then the payload data (a string or bytes, as it is)
      i = (data && (data.byteLength || data.length)) | 0;
      n = b.length + i;
      entry = chr(h);
      do {
        qos = n & 127; // (a local free here)
        n >>= 7;
        entry += chr(n ? qos | 128 : qos);
      } while (n);
      try {
        // Espruino: header, body and payload each as its own write, each appended to the socket's send buffer
        // (a string) at once, the body let go before the payload is converted: no string holds them together.
        // Bytes only as E.toString gives them (the socket writes a Uint8Array as "1,2,3"): it returns an
        // ArrayBuffer or a whole Uint8Array as it is, and copies a view on part of a buffer (writing such a view
        // in slices measured worse: each slice is an object too). A string is not given to E.toString: its
        // first call costs 2 variables for good. Node would write a string as UTF-8, so it gets one Buffer
        // (small writes would wait on each other: Nagle).
        if (s)
          if (global.Buffer) s.write(Buffer.concat([Buffer.from(entry + b, "latin1"), Buffer.from(data || "", "latin1")]));
          else {
            s.write(entry);
            s.write(b);
            b = 0;
            if (i) s.write(typeof data == "string" ? data : E.toString(data));
          }
      } catch (e) {
        link("" + e);
      }
      if (!a) {
        // a QoS 0 PUBLISH is done once written
        link(cb);
        link(c, "published");
      }
    }
  }

  c.connect = function () {
    var s: any;
    if (backoff < 0) backoff = 0;
    if (sock) return;
    if (timer) clearTimeout(timer); // a reconnect was waiting
    state = State.CONNECTING;
    buf = "";
    rx = 0;
    timer = setInterval(link, 1000);
    /** ev(d): every event of this socket: the transport's connect callback (nothing, or the socket on
     * Espruino), data (a string, or a Buffer on Node), close (a boolean, as Node and Espruino give it), error
     * (an Error). Whole packets are taken off the front of the receive buffer and handled; a protocol error
     * (thrown: the packet's header byte, or its reason) ends the connection. */
    function ev(d: any) {
      var n,
        i,
        h,
        body,
        type,
        id,
        k,
        cb,
        x;
      if (s !== sock) return;
      if (d === !!d) return link("connection closed"); // close: a boolean
      // an error (its message ends the connection), or connected (nothing, or the socket on Espruino)
      if (d == null || d.length == null) return link((d && d.message) || Op.CONNECT, d);
      rx = 0;
      buf += d.toString("latin1"); // a Buffer on Node; Espruino's string ignores the encoding
      try {
        while (s === sock) {
          h = buf.charCodeAt(0);
          // the remaining length; a fifth length byte, or a packet over max_packet, ends the connection as soon
          // as its header is here (charCodeAt past the end is NaN, which ends the loop: a length not all here yet
          // is a lower bound, and n > buf.length below)
          n = 0;
          i = 1;
          do {
            if (i > 4) throw h;
            x = buf.charCodeAt(i);
            n += (x & 127) << (7 * i++ - 7);
          } while (x & 128);
          if ((n += i) > (o.max_packet || Default.MAX_PACKET)) throw "over max_packet";
          if (n > buf.length) return;
          body = buf.slice(i, n);
          buf = buf.slice(n);
          type = h >> 4;
          id = (body.charCodeAt(0) << 8) | body.charCodeAt(1);
          // a type the server may not send, flags where none are allowed, a wrong length, CONNACK first and only
          if ((type != Type.PUBLISH && (h & 15 || (LENGTHS[type] as any) != body.length)) || (type == Type.CONNACK) != (state == State.CONNECTING))
            throw h;
          if (type == Type.CONNACK) {
            // (its two bytes, read as the id: the flags, then the return code)
            if ((n = id & 255)) {
              k =
                "connection refused: " +
                (",unacceptable protocol version,identifier rejected,server unavailable,bad user name or password,not authorized".split(",")[n] ||
                  "code " + n);
              return link(k, k);
            }
            state = State.CONNECTED;
            // what waited goes again (or fails, sent too often already)
            link(Op.RESEND, 1);
            // a session the server kept has the subscriptions; otherwise restore those without a SUBSCRIBE waiting
            if (!(id & 256))
              for (k in subs) {
                x = 0;
                for (i in pending) if (pending[i][Field.HEAD] == Head.SUBSCRIBE && pending[i][Field.TOPIC] == k) x = 1;
                // (if a callback disconnected meanwhile, it waits for the next CONNACK)
                if (!x) link(Head.SUBSCRIBE, [k, subs[k], null]);
              }
            if (state >= State.CONNECTED) link(c, "connected");
          } else if (type == Type.PUBLISH) {
            x = h & Flag.QOS_MASK;
            n = id + 2 + x; // topic length, topic, packet id if QoS 1
            if (x > Flag.QOS1 || n > body.length) throw h; // QoS 2 is never granted: we subscribe with at most 1
            link(c, "message", { topic: body.substr(2, id), message: body.slice(n) });
            // not if a listener disconnected (and maybe connected again): never on a closed or a new connection
            if (x && s === sock) link(Type.PUBACK << 4, body.substr(n - 2, 2));
          } else if ((x = pending[id]) && x[Field.HEAD] >> 4 == type - 1) {
            // PUBACK, SUBACK, UNSUBACK: each acknowledges its own packet type (a PINGRESP has no body: its id
            // reads as 0, which no entry has)
            delete pending[id];
            k = x[Field.TOPIC];
            cb = x[Field.CB];
            // the entry, and a message it held, are let go before the callback runs (a SUBACK keeps the qos asked)
            x = type == Type.SUBACK && x[Field.DATA];
            if (type == Type.SUBACK) {
              if ((n = body.charCodeAt(2)) & 128) {
                delete subs[k];
                link(cb, "subscription refused: " + k);
              } else {
                subs[k] = x;
                link(cb, undefined, n);
              }
            } else {
              // called from here, not through link(cb): link's frame would count at the peak of every report
              try {
                if (cb) cb.call(c);
              } catch (e) {
                link(c, "error", e);
              }
              if (type == Type.PUBACK) link(c, "published");
            }
          }
        }
      } catch (e) {
        k = "protocol error";
        link(k, k + ": packet " + e);
      }
    }
    try {
      s = sock = (o.transport || require("net")).connect(o, ev);
      s.on("data", ev);
      s.on("close", ev);
      s.on("error", ev);
    } catch (e) {
      // Espruino's tls.connect throws on a bad key or certificate, its net.connect when refused at once
      link("" + e, e);
    }
  };

  c.disconnect = function () {
    backoff = -1;
    if (state >= State.CONNECTED) link(Type.DISCONNECT << 4, "");
    link("disconnect()");
  };

  /** publish(topic, message[, qos | {qos, retain}[, cb]]) */
  c.publish = function () {
    link(Head.PUBLISH, arguments);
  };

  /** subscribe(topic[, qos | {qos}[, cb]]): QoS 2 is asked as 1 (this client does not do QoS 2) */
  c.subscribe = function () {
    link(Head.SUBSCRIBE, arguments);
  };

  /** unsubscribe(topic[, cb]): the topic is forgotten (not restored any more) once the UNSUBSCRIBE is accepted */
  c.unsubscribe = function () {
    link(Head.UNSUBSCRIBE, arguments);
  };

  return c;
}
