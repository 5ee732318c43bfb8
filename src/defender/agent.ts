// The Device Defender agent: the seed (FreeRTOS) library's API over any client with tinymqtt's API.
//
//   start(info) -> error code    info: mqtt (client: publish(topic, msg, qos, cb(err)), subscribe(topic, qos,
//                                cb(err)), unsubscribe(topic), on/removeListener of connected / disconnected /
//                                message({topic, message})), thingName, callback(event), and optional format
//                                ("cbor" | "json"), longTags, period (s), minPeriod (s, default 300; lower it only
//                                for a local collector), slots (1..255), bufferSize (bytes, default 512), custom
//                                (custom metrics object, or a function returning one, called per report)
//   stop() setPeriod(s) getPeriod() setMetrics(group, flags) report() strerror(code)
//
// One setInterval drives the reports; a period change re-arms it at the next tick (the next iteration).
// The report is written into one preallocated buffer and published (QoS 1) as a view of it; while that
// publish is in flight (until its callback) no other report is written, so a resend never carries a
// newer report. A tick while the client is down, or busy, is skipped: after a reconnect the next tick
// reports, never a burst. Responses are matched by report id against the last few published ids.
// Events reuse one object: read it inside the callback, do not keep it.
// Report ids strictly increase: epoch milliseconds while the clock is set (after 2020), else one more than
// the last; the highest id that may have been used is reserved ahead in Storage (1,000 ids, or a day of
// milliseconds, per write), so ids keep increasing across reboots.
import { setSlots } from "./ring";
import { writeReport, ERR_SPACE, ERR_CUSTOM } from "./report";

// Error codes: the FreeRTOS library's order first.
export var SUCCESS = 0,
  INVALID_INPUT = 1,
  ALREADY_STARTED = 2,
  PERIOD_TOO_SHORT = 3,
  NO_MEMORY = 4,
  INTERNAL_FAILURE = 5,
  PERIOD_TOO_LONG = 6,
  NOT_STARTED = 7,
  MQTT_FAILURE = 8,
  BUSY = 9;

// Event types (event.type).
export var METRICS_ACCEPTED = 1,
  METRICS_REJECTED = 2,
  PUBLISH_FAILED = 3,
  SUBSCRIBE_FAILED = 4,
  REPORT_FAILED = 5,
  REPORT_TRUNCATED = 6,
  SLOTS_OVERFLOWED = 7,
  UNEXPECTED_RESPONSE = 8;

// Metrics groups for setMetrics, and their flags. TCP connections as in FreeRTOS: established total 0x1,
// remote address (the connections list) 0x4, plus local port 0x2. Port groups: total 0x1, ports list 0x2.
// Network stats, custom metrics: 0x1. ALL_METRICS (0xffffffff) turns on every flag of a group.
export var TCP_CONNECTIONS = 0,
  LISTENING_TCP_PORTS = 1,
  LISTENING_UDP_PORTS = 2,
  NETWORK_STATS = 3,
  CUSTOM_METRICS = 4,
  ALL_METRICS = 0xffffffff;

var MAX_PERIOD = 86400,
  DEFAULT_MIN = 300,
  CLOCK_SET = 1577836800000; // 2020-01-01 in ms: below it the clock is taken as not set

// Memory: on Espruino every function costs RAM (about 5 JsVars, plus one per parameter; a closure about 3 more)
// for as long as it exists, an integer variable one, a double or a reference two. So the running agent, its
// callbacks and its state, is made by start() as closures over start's own scope and dropped by stop(): a little
// more while it runs than module-level functions would cost, nothing while it is stopped, and little at require.
// What outlives it (period, metrics flags, report ids) is module-level.
var _per = DEFAULT_MIN,
  _min = DEFAULT_MIN,
  _fl = 0x3ff, // report.ts F_* flags: everything
  _last = 0, // last report id used
  _res = -1, // highest report id reserved in Storage (-1: not read yet)
  /** The running agent, run(op) (op: undefined from the interval, RUN_SEND, RUN_REPORT, RUN_STOP); null while
   * stopped. */
  _run: any = null;
var RUN_SEND = 1, // publish if a report is due (the subscriptions were just granted)
  RUN_REPORT = 2, // report(): publish now, returns an error code
  RUN_STOP = 3; // stop()

export function start(info: any): number {
  // every var declared up front: Espruino does not hoist var, and the minifier may reorder the branches
  // (the closures below keep this scope for as long as the agent runs: every variable here costs RAM then,
  // so the format and the buffer size are checked in the variables that then hold the flag and the buffer)
  var mq = info && info.mqtt,
    min = _min,
    n = info && info.slots,
    e: number,
    // the running agent's state
    cb: any,
    cm: any,
    json: any = info && info.format, // 1 JSON, 0 CBOR
    long: any, // 1 long tags, 0 short
    tp: string, // report topic
    buf: any = (info && info.bufferSize) || 512,
    ev: any, // the one event object (with a callback)
    ids: Float64Array, // [0], [1] writeReport's info; [2..5] ids awaiting a response; [6] id last published
    ix = 0, // where the next id goes in ids[2..5]
    timer: any,
    iv = 0, // period the interval runs at
    up = 1, // client connected, as far as the events tell; taken as connected at start (often called from
    // the client's own "connected" listener): a client that is not refuses the subscriptions (retried on
    // "connected") or holds them until it is
    sub = 0, // 0 not subscribed, 1 subscribing, 2 subscribed
    busy = 0, // a publish is in flight
    due = 0, // a report is wanted
    s = "", // response being decoded, and where
    p = 0,
    clock: any = typeof getTime === "function" ? getTime : 0, // else Date.now in seconds (the tests give theirs)
    // its callbacks; run is _run while it runs (a callback of an earlier run does nothing)
    run: any,
    emit: any,
    onConnected: any,
    onDisconnected: any,
    onPub: any,
    onMsg: any,
    cbor: any;
  if (_run) return ALREADY_STARTED;
  if (
    !(mq && mq.publish && mq.subscribe && mq.on) ||
    typeof info.thingName !== "string" ||
    info.thingName.length > 128 ||
    !/^[\w:-]+$/.test(info.thingName) || // Espruino's regular expressions have no {m,n}
    (info.callback && typeof info.callback !== "function") ||
    (json && json !== "cbor" && json !== "json") ||
    !((_min = info.minPeriod != null ? info.minPeriod : DEFAULT_MIN) > 0) ||
    (n != null && !(n >= 1 && n <= 255)) ||
    !(buf >= 64 && buf <= 65535)
  ) {
    _min = min;
    return INVALID_INPUT;
  }
  try {
    buf = new Uint8Array(buf);
    ids = new Float64Array(7);
  } catch (x) {
    _min = min;
    return NO_MEMORY;
  }
  // last: the period against the new minimum (setPeriod changes nothing on error)
  if ((e = setPeriod(info.period != null ? info.period : _per))) {
    _min = min;
    return e;
  }
  if (n) setSlots(n);
  cb = info.callback;
  ev = cb ? { type: 0, reportId: 0, code: 0, message: "" } : 0;
  cm = info.custom || null;
  json = json === "json" ? 1 : 0;
  long = info.longTags ? 1 : 0;
  tp = "$aws/things/" + info.thingName + "/defender/metrics/" + (json ? "json" : "cbor");
  info = 0; // not the caller's object

  /** Calls the application back with the one event object. code: an error code, the service's ErrorCode, or
   * a count; message: text (from an Error, its message). */
  emit = function (type: number, id: number, code: any, message: any): void {
    if (ev) {
      ev.type = type;
      ev.reportId = id;
      ev.code = code;
      ev.message = message ? "" + (message.message || message) : "";
      try {
        cb(ev);
      } catch (x) {
        // the application's callback must not break the agent
      }
    }
  };

  /** Listener of "connected"; also how the agent subscribes at start and at a retry. A client without a
   * session may have lost the subscriptions at a reconnect: subscribe again (the next tick reports). The
   * subscribe callback is made per round (it lives until the SUBACK) and counts that round's grants only. */
  onConnected = function (): void {
    var k = 0,
      granted: any = function (err?: any): void {
        if (_run === run && err) {
          sub = 0;
          emit(SUBSCRIBE_FAILED, 0, MQTT_FAILURE, err);
        } else if (_run === run && sub === 1 && ++k === 2) {
          sub = 2;
          run(RUN_SEND);
        }
      };
    up = 1;
    if (sub !== 1) {
      sub = 1;
      try {
        mq.subscribe(tp + "/accepted", 1, granted);
        mq.subscribe(tp + "/rejected", 1, granted);
      } catch (x) {
        granted(x);
      }
    }
    granted = 0; // its scope is this one: no cycle through it once the client has dropped it
  };

  onDisconnected = function (): void {
    up = 0;
  };

  onPub = function (err?: any): void {
    busy = 0;
    if (err && _run === run) emit(PUBLISH_FAILED, ids[6], MQTT_FAILURE, err);
  };

  /** A tiny CBOR decoder of s from p, enough for the service's response map: maps, arrays, strings, integers,
   * true, false, null; a float (the timestamp, if the service sends one as a float) decodes to null. Throws on
   * bad input. Made once per start (a recursive closure made per call leaks on Espruino 2v29). */
  cbor = function (): any {
    var c = s.charCodeAt(p++),
      t = c >> 5,
      l = c & 31,
      k,
      v: any;
    if (l > 27 || c !== c) throw 0;
    if (l > 23) for (k = 1 << (l - 24), l = 0; k--; ) l = l * 256 + s.charCodeAt(p++);
    if (t < 2) return t ? -1 - l : l;
    if (t < 4) {
      v = s.substr(p, l);
      p += l;
      return v;
    }
    if (t > 5) return t < 7 ? cbor() : l === 20 ? false : l === 21 ? true : null;
    v = t < 5 ? [] : {};
    for (k = 0; k < l; k++) {
      if (t < 5) v.push(cbor());
      else v[cbor()] = cbor();
    }
    return v;
  };

  /** Listener of "message": a response on TOPIC/accepted or TOPIC/rejected, matched by report id. */
  onMsg = function (m: any): void {
    var k = m && m.topic,
      r: any,
      id = 0,
      i,
      d: any;
    try {
      if (_run !== run || typeof k !== "string" || k.indexOf(tp)) return;
      k = k.substr(tp.length);
      k = k === "/accepted" ? 1 : k === "/rejected" ? 2 : 0;
      if (!k) return;
      try {
        s = m.message;
        p = 0;
        r = json ? JSON.parse(s) : cbor();
        id = r.reportId;
      } catch (x) {
        r = 0;
      }
      s = "";
      for (i = 2; i < 6; i++) {
        if (id && ids[i] === id) {
          ids[i] = 0;
          d = r.statusDetails || {};
          return k < 2 ? emit(METRICS_ACCEPTED, id, 0, 0) : emit(METRICS_REJECTED, id, d.ErrorCode, d.ErrorMessage);
        }
      }
      emit(UNEXPECTED_RESPONSE, +id || 0, 0, r ? r.status : "undecodable");
    } catch (x) {
      // never throw into the client
    }
  };

  /** The interval's callback (op undefined), and what the exported functions and the callbacks ask of the
   * running agent (op RUN_*). Publishes a report when one is due and the client is up, subscribed and idle. */
  _run = run = function (op?: number): any {
    var t, id, i;
    if (op === RUN_STOP) {
      _run = null;
      clearInterval(timer);
      try {
        mq.removeListener("connected", onConnected);
        mq.removeListener("disconnected", onDisconnected);
        mq.removeListener("message", onMsg);
        if (mq.unsubscribe) {
          mq.unsubscribe(tp + "/accepted");
          mq.unsubscribe(tp + "/rejected");
        }
      } catch (x) {
        // a client that is gone: nothing more to release
      }
      _min = DEFAULT_MIN;
      return SUCCESS;
    }
    if (op === RUN_REPORT) {
      if (!up) return MQTT_FAILURE;
      if (busy) return BUSY;
      due = 1;
    }
    try {
      if (!op) {
        if (iv !== _per) {
          // a new period takes effect here, at the next iteration
          clearInterval(timer);
          timer = setInterval(run, (iv = _per) * 1000);
        }
        due = 1;
      }
      if (!up) due = 0; // down: this tick is skipped; after the reconnect the next tick reports
      if (due && !busy) {
        if (sub < 2) {
          if (!sub) onConnected();
        } else {
          due = 0;
          // the report id
          if (_res < 0) {
            try {
              _last = Math.max(_last, +(require("Storage").read("defender.rid") as any) || 0);
            } catch (x) {
              // no Storage (plain Node): ids still increase while the module lives
            }
            _res = _last;
          }
          t = Math.floor((clock ? clock() : Date.now() / 1000) * 1000);
          id = _last = t > CLOCK_SET && t > _last ? t : _last + 1;
          if (id > _res) {
            _res = id + (id === t ? 864e5 : 1000);
            try {
              require("Storage").write("defender.rid", "" + _res);
            } catch (x) {
              // no Storage, or a full one: the ids still increase until the next reboot
            }
          }
          i = writeReport(buf, json, long, _fl, id, cm, ids);
          if (i < 0) emit(REPORT_FAILED, id, i === ERR_SPACE ? NO_MEMORY : i === ERR_CUSTOM ? INVALID_INPUT : INTERNAL_FAILURE, 0);
          else {
            if (ids[0]) emit(REPORT_TRUNCATED, id, ids[0], 0);
            if (ids[1]) emit(SLOTS_OVERFLOWED, id, ids[1], 0);
            ids[6] = ids[2 + (ix = (ix + 1) & 3)] = id;
            busy = 1;
            try {
              mq.publish(tp, buf.subarray(0, i), 1, onPub);
            } catch (x) {
              onPub(x);
            }
          }
        }
      }
    } catch (x) {
      // never throw out of a timer or a client callback, but say what went wrong
      emit(REPORT_FAILED, 0, INTERNAL_FAILURE, x);
    }
    return SUCCESS;
  };

  mq.on("connected", onConnected);
  mq.on("disconnected", onDisconnected);
  mq.on("message", onMsg);
  onConnected();
  timer = setInterval(run, (iv = _per) * 1000);
  return SUCCESS;
}

export function stop(): number {
  return _run ? _run(RUN_STOP) : NOT_STARTED;
}

export function setPeriod(seconds: number): number {
  var e =
    typeof seconds !== "number" || seconds !== seconds
      ? INVALID_INPUT
      : seconds < _min
        ? PERIOD_TOO_SHORT
        : seconds > MAX_PERIOD
          ? PERIOD_TOO_LONG
          : SUCCESS;
  if (!e) _per = seconds;
  return e;
}

export function getPeriod(): number {
  return _per;
}

/** Group g's flags sit at bit 0, 4, 6, 8, 9 of report.ts's F_* flags, 3, 2, 2, 1, 1 of them. */
export function setMetrics(group: number, flags: number): number {
  var s = group < 1 ? 0 : group < 3 ? 2 * group + 2 : group + 5,
    w = group < 1 ? 7 : group < 3 ? 3 : 1;
  if (!(group >= 0 && group <= 4) || group % 1 || typeof flags !== "number") return INVALID_INPUT;
  _fl = (_fl & ~(w << s)) | ((flags & w) << s);
  return SUCCESS;
}

/** Publishes a report now (the periodic ones go on as before). */
export function report(): number {
  return _run ? _run(RUN_REPORT) : NOT_STARTED;
}

export function strerror(code: number): string {
  return (
    "SUCCESS INVALID_INPUT ALREADY_STARTED PERIOD_TOO_SHORT NO_MEMORY INTERNAL_FAILURE PERIOD_TOO_LONG " +
    "NOT_STARTED MQTT_FAILURE BUSY"
  ).split(" ")[code] || "UNKNOWN";
}
