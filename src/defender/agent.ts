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
  CLOCK_SET = 1577836800000, // 2020-01-01 in ms: below it the clock is taken as not set
  ID_FILE = "defender.rid";

// Memory: on Espruino each module-level function costs about 5 JsVars plus one per parameter for as long as
// the module is loaded, an integer variable one, a boolean, a double or a reference two; so there are few
// functions with few parameters, flags are integers, and the report ids sit in one Float64Array.
var _on = 0,
  _mq: any = null,
  _cb: any = null,
  _cm: any = null,
  _tp = "", // report topic
  _fmt = 0, // 1 JSON, + 2 long tags
  _per = DEFAULT_MIN,
  _min = DEFAULT_MIN,
  _iv = 0, // period the interval runs at
  _fl = 0x3ff, // report.ts F_* flags: everything
  _t: any = null, // interval
  _buf: Uint8Array | null = null,
  _up = 0, // client connected, as far as the events tell
  _sub = 0, // 0 not subscribed, 1 subscribing, 2 subscribed
  _busy = 0, // a publish is in flight
  _due = 0, // a report is wanted
  _ix = 0, // where the next id goes in A[IDS..IDS+3]
  _ev: any = null, // the one event object (while started with a callback)
  /** getTime where there is one (Espruino; the tests give theirs), else Date.now in seconds */
  _clock: any = typeof getTime === "function" ? getTime : 0,
  /** [0], [1]: writeReport's info; [IDS..IDS+3] ids awaiting a response; [PID] id of the last report
   * published; [LAST] last report id used; [RES] highest id reserved in Storage (-1: not read yet) */
  A = new Float64Array(9);
var IDS = 2,
  PID = 6,
  LAST = 7,
  RES = 8;
A[RES] = -1;

/** Calls the application back with the one event object. code: an error code, the service's ErrorCode, or a
 * count; message: text (from an Error, its message). */
function emit(type: number, id: number, code: any, message: any): void {
  if (_ev) {
    _ev.type = type;
    _ev.reportId = id;
    _ev.code = code;
    _ev.message = message ? "" + (message.message || message) : "";
    try {
      _cb(_ev);
    } catch (e) {
      // the application's callback must not break the agent
    }
  }
}

/** Listener of "connected"; also how the agent subscribes at start and at a retry. A client without a
 * session may have lost the subscriptions at a reconnect: subscribe again (the next tick reports). The
 * subscribe callback is made per round (it lives until the SUBACK) and counts that round's grants only. */
function onConnected(): void {
  var n = 0,
    sub: any = function (err?: any): void {
      if (_on && err) {
        _sub = 0;
        emit(SUBSCRIBE_FAILED, 0, MQTT_FAILURE, err);
      } else if (_on && _sub === 1 && ++n === 2) {
        _sub = 2;
        tick(1);
      }
    };
  _up = 1;
  if (_on && _sub !== 1) {
    _sub = 1;
    try {
      _mq.subscribe(_tp + "/accepted", 1, sub);
      _mq.subscribe(_tp + "/rejected", 1, sub);
    } catch (e) {
      sub(e);
    }
  }
  sub = 0; // the callback's scope is this one: no cycle through it once the client has dropped it
}

function onDisconnected(): void {
  _up = 0;
}

function onPub(err?: any): void {
  _busy = 0;
  if (err && _on) emit(PUBLISH_FAILED, A[PID], MQTT_FAILURE, err);
}

/** The interval's callback, and (now 1) how a report goes out at once: publishes a report if one is due and
 * the client is up, subscribed and idle. */
function tick(now?: number): void {
  var t, id, n;
  try {
    if (now !== 1) {
      if (_iv !== _per) {
        // a new period takes effect here, at the next iteration
        clearInterval(_t);
        _t = setInterval(tick, (_iv = _per) * 1000);
      }
      _due = 1;
    }
    if (!_up) _due = 0; // down: this tick is skipped; after the reconnect the next tick reports
    if (!_due || _busy || !_buf) return;
    if (_sub < 2) {
      if (!_sub) onConnected();
      return;
    }
    _due = 0;
    // the report id
    if (A[RES] < 0) {
      try {
        A[LAST] = Math.max(A[LAST], +(require("Storage").read(ID_FILE) as any) || 0);
      } catch (e) {
        // no Storage (plain Node): ids still increase while the module lives
      }
      A[RES] = A[LAST];
    }
    t = Math.floor((_clock ? _clock() : Date.now() / 1000) * 1000);
    id = A[LAST] = t > CLOCK_SET && t > A[LAST] ? t : A[LAST] + 1;
    if (id > A[RES]) {
      A[RES] = id + (id === t ? 864e5 : 1000);
      try {
        require("Storage").write(ID_FILE, "" + A[RES]);
      } catch (e) {
        // no Storage, or a full one: the ids still increase until the next reboot
      }
    }
    n = writeReport(_buf, !!(_fmt & 1), !!(_fmt & 2), _fl, id, _cm, A);
    if (n < 0) return emit(REPORT_FAILED, id, n === ERR_SPACE ? NO_MEMORY : n === ERR_CUSTOM ? INVALID_INPUT : INTERNAL_FAILURE, 0);
    if (A[0]) emit(REPORT_TRUNCATED, id, A[0], 0);
    if (A[1]) emit(SLOTS_OVERFLOWED, id, A[1], 0);
    A[PID] = A[IDS + (_ix = (_ix + 1) & 3)] = id;
    _busy = 1;
    try {
      _mq.publish(_tp, _buf.subarray(0, n), 1, onPub);
    } catch (e) {
      onPub(e);
    }
  } catch (e) {
    // never throw out of a timer or a client callback, but say what went wrong
    emit(REPORT_FAILED, 0, INTERNAL_FAILURE, e);
  }
}

/** A tiny CBOR decoder of _s from _i, enough for the service's response map: maps, arrays, strings, integers,
 * true, false, null; a float (the timestamp, if the service sends one as a float) decodes to null. Throws on
 * bad input. (Not a closure in onMsg: a recursive closure leaks on Espruino 2v29.) */
var _s = "",
  _i = 0;
function cbor(): any {
  var c = _s.charCodeAt(_i++),
    t = c >> 5,
    n = c & 31,
    l,
    k,
    v: any;
  if (n > 27 || c !== c) throw 0;
  if (n > 23) for (l = 1 << (n - 24), n = 0; l--; ) n = n * 256 + _s.charCodeAt(_i++);
  if (t < 2) return t ? -1 - n : n;
  if (t < 4) {
    v = _s.substr(_i, n);
    _i += n;
    return v;
  }
  if (t > 5) return t < 7 ? cbor() : n === 20 ? false : n === 21 ? true : null;
  v = t < 5 ? [] : {};
  for (k = 0; k < n; k++) {
    if (t < 5) v.push(cbor());
    else v[cbor()] = cbor();
  }
  return v;
}

/** Listener of "message": a response on TOPIC/accepted or TOPIC/rejected, matched by report id. */
function onMsg(m: any): void {
  var k = m && m.topic,
    r: any,
    id = 0,
    i,
    d: any;
  try {
    if (!_on || typeof k !== "string" || k.indexOf(_tp)) return;
    k = k.substr(_tp.length);
    k = k === "/accepted" ? 1 : k === "/rejected" ? 2 : 0;
    if (!k) return;
    try {
      _s = m.message;
      _i = 0;
      r = _fmt & 1 ? JSON.parse(_s) : cbor();
      id = r.reportId;
    } catch (e) {
      r = 0;
    }
    _s = "";
    for (i = IDS; i < IDS + 4; i++) {
      if (id && A[i] === id) {
        A[i] = 0;
        d = r.statusDetails || {};
        return k < 2 ? emit(METRICS_ACCEPTED, id, 0, 0) : emit(METRICS_REJECTED, id, d.ErrorCode, d.ErrorMessage);
      }
    }
    emit(UNEXPECTED_RESPONSE, +id || 0, 0, r ? r.status : "undecodable");
  } catch (e) {
    // never throw into the client
  }
}

export function start(info: any): number {
  var mq = info && info.mqtt,
    f = info && info.format,
    min = _min,
    n = info && info.slots,
    size = (info && info.bufferSize) || 512,
    e: number;
  if (_on) return ALREADY_STARTED;
  if (
    !(mq && mq.publish && mq.subscribe && mq.on) ||
    typeof info.thingName !== "string" ||
    info.thingName.length > 128 ||
    !/^[\w:-]+$/.test(info.thingName) || // Espruino's regular expressions have no {m,n}
    (info.callback && typeof info.callback !== "function") ||
    (f && f !== "cbor" && f !== "json") ||
    !((_min = info.minPeriod != null ? info.minPeriod : DEFAULT_MIN) > 0) ||
    (n != null && !(n >= 1 && n <= 255)) ||
    !(size >= 64 && size <= 65535)
  ) {
    _min = min;
    return INVALID_INPUT;
  }
  try {
    _buf = new Uint8Array(size);
  } catch (x) {
    _min = min;
    return NO_MEMORY;
  }
  // last: the period against the new minimum (setPeriod changes nothing on error)
  if ((e = setPeriod(info.period != null ? info.period : _per))) {
    _min = min;
    _buf = null;
    return e;
  }
  if (n) setSlots(n);
  _mq = mq;
  _cb = info.callback;
  _ev = _cb ? { type: 0, reportId: 0, code: 0, message: "" } : null;
  _cm = info.custom || null;
  _fmt = (f === "json" ? 1 : 0) + (info.longTags ? 2 : 0);
  _tp = "$aws/things/" + info.thingName + "/defender/metrics/" + (f === "json" ? "json" : "cbor");
  _on = 1;
  _busy = _due = _sub = 0;
  mq.on("connected", onConnected);
  mq.on("disconnected", onDisconnected);
  mq.on("message", onMsg);
  // taken as connected (start is often called from the client's own "connected" listener); a client that is
  // not refuses the subscriptions (retried on "connected") or holds them until it is
  onConnected();
  _t = setInterval(tick, (_iv = _per) * 1000);
  return SUCCESS;
}

export function stop(): number {
  var mq = _mq,
    i;
  if (!_on) return NOT_STARTED;
  _on = 0;
  clearInterval(_t);
  try {
    mq.removeListener("connected", onConnected);
    mq.removeListener("disconnected", onDisconnected);
    mq.removeListener("message", onMsg);
    if (mq.unsubscribe) {
      mq.unsubscribe(_tp + "/accepted");
      mq.unsubscribe(_tp + "/rejected");
    }
  } catch (e) {
    // a client that is gone: nothing more to release
  }
  _mq = _cb = _cm = _buf = _t = _ev = null;
  _tp = "";
  _min = DEFAULT_MIN;
  for (i = IDS; i < IDS + 4; i++) A[i] = 0;
  return SUCCESS;
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
  if (!_on) return NOT_STARTED;
  if (!_up) return MQTT_FAILURE;
  if (_busy) return BUSY;
  _due = 1;
  tick(1);
  return SUCCESS;
}

export function strerror(code: number): string {
  return (
    "SUCCESS INVALID_INPUT ALREADY_STARTED PERIOD_TOO_SHORT NO_MEMORY INTERNAL_FAILURE PERIOD_TOO_LONG " +
    "NOT_STARTED MQTT_FAILURE BUSY"
  ).split(" ")[code] || "UNKNOWN";
}
