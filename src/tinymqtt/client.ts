// tinymqtt client: MQTT 3.1.1 over any transport with connect(options, onConnect) (Espruino's net or tls,
// Node's, a tracked one, a mock). Ours because no npm client fits Espruino: the npm `mqtt` package is ES2015+
// and tens of kilobytes, and Espruino's tinyMQTT (not on npm) has neither QoS 1 nor TLS options.
//
// The client's state lives in the closure of create(): one client per device, and local names minify to one
// letter where properties would not. Payloads and topics are byte strings inside (what Espruino's sockets
// carry); a Uint8Array/Buffer payload is converted once per publish. Packets awaiting an acknowledgement
// (QoS 1 PUBLISH, SUBSCRIBE, UNSUBSCRIBE) are kept, at most max_inflight, and sent again (a PUBLISH with DUP)
// after `timeout` seconds and after a reconnect. One 1-second timer per connection drives keep-alive,
// acknowledgement timeouts and the CONNACK deadline. Errors go to the callback, or else the "error" event;
// nothing throws out of a socket or timer callback.
import { PUBLISH, PUBACK, SUBSCRIBE, UNSUBSCRIBE, PINGREQ, DISCONNECT, CONNECT, chr, u16, str, packet, frame, head } from "./packet";

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

export function create(server: string, o?: any): any {
  o = o || {};
  var c: any = {},
    pending: any = {}, // packet id -> [packet, callback, seconds since sent, times sent, topic, qos]
    inflight = 0,
    granted: any = {}, // subscriptions the server granted: topic filter -> qos
    lastId = 0,
    backoff = 0, // s; 0 while connections succeed
    state = 0, // 0 closed, 1 connecting, 2 connected
    sock: any = null,
    wanted = 0, // connect() called, disconnect() not since: reconnect after a loss
    buf = "",
    rx = 0, // seconds since something was received
    tx = 0, // since something was sent
    ping = 0, // since the last PINGREQ
    ticker: any = 0, // timer handles start as 0: Espruino's clearTimeout(undefined) throws
    retry: any = 0,
    ka = o.keep_alive == null ? 60 : o.keep_alive,
    timeout = o.timeout || 10;
  // Espruino objects are event emitters already; Node's are not
  if (!c.emit) c = new (require("events"))();

  /** Calls application code (a callback, or an event's listeners: f = c.emit, a = the event) without letting it
   * throw; what it throws becomes an "error" event. Node's emitter throws an "error" nobody listens to: not
   * emitted then. */
  function fire(f: any, a?: any, b?: any): void {
    try {
      if (f && (a !== "error" || !c.listenerCount || c.listenerCount(a))) f.call(c, a, b);
    } catch (e) {
      if (a !== "error") fire(c.emit, "error", e);
    }
  }

  /** An Error for callback cb, or the "error" event without one. */
  function fail(cb: any, text: string): void {
    if (cb) fire(cb, new Error(text));
    else fire(c.emit, "error", new Error(text));
  }

  function send(p: string): void {
    tx = 0;
    try {
      // Espruino writes a byte string as its bytes; Node would write it as UTF-8, so it gets a Buffer (whatever
      // wraps the socket: a tracked one, a stand-in waiting for DNS, passes it on as it is)
      sock.write(typeof Buffer != "undefined" ? Buffer.from(p, "latin1") : p);
    } catch (e) {
      down("write failed: " + e);
    }
  }

  /** Connection lost or given up: tell the application, then reconnect after a back-off with jitter. */
  function down(why: string): void {
    var s = sock;
    clearInterval(ticker);
    sock = null;
    state = 0;
    try {
      if (s) s.end();
    } catch (e) {
      // already closed
    }
    fire(c.emit, "disconnected", why);
    if (wanted && o.reconnect !== false) {
      backoff = Math.min(backoff ? backoff * 2 : o.reconnect_min || 1, o.reconnect_max || 60);
      retry = setTimeout(c.connect, backoff * (500 + Math.random() * 500));
    }
  }

  /** A packet that awaits its acknowledgement: header byte h, body pre + packet id + post. Kept (at most
   * max_inflight, unless cb is 0: a subscription being restored) and sent now if connected, else after the next
   * CONNACK. With the table full, cb gets "too many in flight". */
  function keep(h: number, pre: string, post: string, cb: any, topic?: string, qos?: number): any {
    if (cb !== 0 && inflight >= (o.max_inflight || 8)) return fail(cb, "too many in flight");
    do lastId = (lastId % 65535) + 1;
    while (pending[lastId]);
    var e = (pending[lastId] = [packet(h, pre + u16(lastId) + post), cb, 0, 0, topic, qos]);
    inflight++;
    if (state > 1) flush(e);
  }

  /** (Re)sends a pending packet; a PUBLISH that went before goes with DUP set. */
  function flush(e: any): void {
    var p = e[0];
    e[2] = 0;
    send(e[3]++ && p.charCodeAt(0) >> 4 == 3 ? chr(p.charCodeAt(0) | 8) + p.substr(1) : p);
  }

  function tick(): void {
    var k, e;
    rx++;
    tx++;
    ping++;
    if (state < 2) {
      if (rx >= timeout) down("no CONNACK within " + timeout + " s");
      return;
    }
    if (ka) {
      // silent for 1.5 keep-alive intervals: dead (MQTT 3.1.1, 3.1.2.10)
      if (rx >= ka * 1.5) return down("keep-alive timeout");
      if (tx >= ka / 2 || (rx >= ka / 2 && ping >= ka / 2)) {
        ping = 0;
        send(packet(PINGREQ, ""));
      }
    }
    for (k in pending) {
      e = pending[k];
      if (sock && ++e[2] >= timeout) {
        if (e[3] > (o.retries == null ? 3 : o.retries)) {
          delete pending[k];
          inflight--;
          fail(e[1], "no acknowledgement after " + e[3] + " tries");
        } else flush(e);
      }
    }
  }

  /** Socket data: appended to the receive buffer; whole packets are taken off its front and handled. A protocol
   * error (thrown as its reason) ends the connection. */
  function data(s: any, d: any): void {
    var n, h, b, t, l, id, q, e, k;
    if (s !== sock) return;
    rx = 0;
    buf += typeof d == "string" ? d : bytes(d);
    try {
      while ((n = frame(buf, o.max_packet || 4096))) {
        if (n < 0) throw n < -1 ? "packet over max_packet" : "bad remaining length";
        h = buf.charCodeAt(0);
        b = buf.substr(head, n - head);
        buf = buf.substr(n);
        t = h >> 4;
        l = b.length;
        id = (b.charCodeAt(0) << 8) | b.charCodeAt(1);
        q = h & 6;
        e = 0;
        if (t != 3 && h & 15) throw "bad flags";
        if ((t == 2) != state < 2) throw "unexpected packet type " + t;
        if (t == 4 || t == 9 || t == 11) {
          // an acknowledgement: PUBACK and UNSUBACK are 2 bytes, SUBACK 3 (one topic per SUBSCRIBE)
          if (l != (t == 9 ? 3 : 2)) throw "bad acknowledgement";
          if ((e = pending[id])) {
            delete pending[id];
            inflight--;
          }
        }
        if (t == 2) {
          if (l != 2) throw "bad CONNACK";
          if ((n = b.charCodeAt(1))) {
            k =
              "connection refused: " +
              (",unacceptable protocol version,identifier rejected,server unavailable,bad user name or password,not authorized".split(",")[n] ||
                "code " + n);
            fire(c.emit, "error", new Error(k));
            return down(k);
          }
          state = 2;
          backoff = 0;
          for (k in pending) flush(pending[k]);
          // a session the server kept still has the subscriptions; otherwise restore them (sent at once: state 2)
          if (!(b.charCodeAt(0) & 1)) for (k in granted) keep(SUBSCRIBE, "", str(k) + chr(granted[k]), 0, k, granted[k]);
          fire(c.emit, "connected");
        } else if (t == 3) {
          n = id + 2;
          if (q > 2 || n > l) throw "bad PUBLISH"; // QoS 2 is never granted: we subscribe with at most 1
          k = b.substr(2, id);
          if (q) {
            id = (b.charCodeAt(n) << 8) | b.charCodeAt(n + 1);
            if ((n += 2) > l) throw "bad PUBLISH";
          }
          fire(c.emit, "message", { topic: k, message: b.substr(n) });
          if (q) send(packet(PUBACK, u16(id)));
        } else if (t == 9) {
          n = b.charCodeAt(2);
          if (n & 128) fail(e && e[1], "subscription refused" + (e ? ": " + e[4] : ""));
          else if (e) {
            granted[e[4]] = e[5];
            fire(e[1], undefined, n);
          }
        } else if (t == 4 || t == 11) {
          if (e) {
            fire(e[1]);
            if (t == 4) fire(c.emit, "published");
          }
        } else if (t != 13 || l) throw "unexpected packet type " + t;
        if (s !== sock) return; // an application callback disconnected
      }
    } catch (x) {
      fire(c.emit, "error", new Error("protocol error: " + x));
      down("protocol error");
    }
  }

  c.connect = function () {
    var s: any;
    clearTimeout(retry);
    wanted = 1;
    if (sock) return;
    // the options go to transport.connect as they are (TLS key, cert, ca, servername, ...), with host and port
    o.host = server;
    o.port = o.port || 1883;
    state = 1;
    buf = "";
    rx = tx = ping = 0;
    ticker = setInterval(tick, 1000);
    /** end, close or error of the socket (an error comes with its reason) */
    function gone(e?: any) {
      if (s !== sock) return;
      if (e && e.message) fire(c.emit, "error", e);
      down(e && e.message ? e.message : "connection closed");
    }
    try {
      s = sock = (o.transport || require("net")).connect(o, function () {
        if (s === sock)
          send(
            packet(
              CONNECT,
              str("MQTT") +
                chr(4, (o.username ? 128 : 0) | (o.password ? 64 : 0) | (o.clean_session === false ? 0 : 2)) +
                u16(ka) +
                str(o.client_id || "") +
                (o.username ? str(o.username) : "") +
                (o.password ? str(o.password) : ""),
            ),
          );
      });
      s.on("data", function (d: any) {
        data(s, d);
      });
      s.on("end", gone);
      s.on("close", gone);
      s.on("error", gone);
    } catch (e) {
      // Espruino's tls.connect throws on a bad key or certificate
      fire(c.emit, "error", e);
      down("" + e);
    }
  };

  c.disconnect = function () {
    wanted = 0;
    clearTimeout(retry);
    if (sock) {
      if (state > 1) send(packet(DISCONNECT, ""));
      down("disconnect()");
    }
  };

  c.publish = function (topic: any, message: any, qos: any, cb?: any) {
    var r = 0,
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
          : !qos && state < 2
            ? "not connected"
            : "";
    if (p) return fail(cb, p);
    if (qos) return keep(PUBLISH | 2 | r, str(topic), bytes(message), cb);
    send(packet(PUBLISH | r, str(topic) + bytes(message)));
    fire(cb);
    fire(c.emit, "published");
  };

  c.subscribe = function (topic: any, qos: any, cb?: any) {
    if (typeof qos == "function") {
      cb = qos;
      qos = 0;
    }
    qos = qos ? 1 : 0; // QoS 2 is asked as 1: this client does not do QoS 2
    if (typeof topic != "string" || !topic || topic.length > 65535) return fail(cb, "invalid topic filter: " + topic);
    keep(SUBSCRIBE, "", str(topic) + chr(qos), cb, topic, qos);
  };

  c.unsubscribe = function (topic: any, cb?: any) {
    delete granted[topic];
    keep(UNSUBSCRIBE, "", str("" + topic), cb);
  };

  return c;
}
