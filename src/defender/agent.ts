// The Device Defender agent: the seed (FreeRTOS) library's API over any client with tinymqtt's API
// (README, "Agent API").
//
//   start(info) -> error code    info: mqtt (client: publish(topic, msg, qos, cb(err)), subscribe(topic, qos,
//                                cb(err)), unsubscribe(topic), on/removeListener of connected / disconnected /
//                                message({topic, message})), thingName, callback(event), and optional format
//                                ("cbor" | "json"), longTags, period (s), minPeriod (s, default 300; lower it only
//                                for a local collector), slots (1..255), bufferSize (most bytes of a report,
//                                default 512), custom
//                                (custom metrics object, or a function returning one, called per report)
//   stop() setPeriod(s) getPeriod() setMetrics(group, flags) report() strerror(code)
//
// One setInterval drives the reports; a period change re-arms it at the next tick (the next iteration).
// The report is written as one byte string of at most bufferSize bytes and published as it is (QoS 1): no buffer
// is held between reports, and the client keeps the string only until the PUBACK. While that publish is in flight
// (until its callback) no other report is written. A tick while the client is down, or busy, is skipped: after a
// reconnect the next tick reports, never a burst. Responses are matched by report id against the last few
// published ids. Each event is a new object (one kept for reuse would cost its JsVars between reports).
// The two response topics are subscribed once, at start; a topic is subscribed again only after its subscription
// failed (the client itself restores granted subscriptions after a reconnect).
// Network counters and the slot-overflow count are deltas "since the last acknowledged report": what a report
// carried is remembered when it is written and subtracted when its publish is acknowledged, so a report whose
// publish failed leaves its counts to the next one, and no count is in two acknowledged reports.
// Report ids strictly increase: epoch milliseconds while the clock is set (after 2020), else one more than the
// last; the highest id that may have been used is reserved ahead in Storage (1,000 ids, or a day of milliseconds,
// per write), so ids keep increasing across reboots.
//
// Memory on Espruino (docs/memory.md): a function costs RAM for as long as it exists, a function
// nested in one that has not run costs nothing, and so does a local variable of a call that has returned. So the
// running agent is one closure, made by start() and dropped by stop(): the interval, the client's three events,
// stop() and report() all call it (Op below), and so does the agent itself to tell the application (Op.EMIT). What
// it does per call (write a report, decode a response, ...) is written in line in it and exists only while that
// call runs. Its numbers live in ring.ts's Int32Array (Num), not in variables of start()'s scope, each of which the
// closure would keep; an event object is made per event. What outlives a run (period, metrics flags, report ids)
// is module-level.
import { setSlots, S, NS, At, Stat } from "./ring";
import { writeReport, badMetric, Err, Flag } from "./report";

/** Error codes (README: numbers, the FreeRTOS library's order first; strerror() names them). */
const enum Code {
  SUCCESS = 0,
  INVALID_INPUT = 1,
  ALREADY_STARTED = 2,
  PERIOD_TOO_SHORT = 3,
  NO_MEMORY = 4,
  INTERNAL_FAILURE = 5,
  PERIOD_TOO_LONG = 6,
  NOT_STARTED = 7,
  MQTT_FAILURE = 8,
  BUSY = 9,
}

/** Event types (event.type; README). */
const enum Event {
  METRICS_ACCEPTED = 1,
  METRICS_REJECTED = 2,
  PUBLISH_FAILED = 3,
  SUBSCRIBE_FAILED = 4,
  REPORT_FAILED = 5,
  REPORT_TRUNCATED = 6,
  SLOTS_OVERFLOWED = 7,
  UNEXPECTED_RESPONSE = 8,
}

/** What a call of the running agent is. The client's events call it with what they carry: "connected" with
 * nothing, "disconnected" with its reason (a string), "message" with the message (an object). */
const enum Op {
  TICK = 1, // the interval
  REPORT = 2, // report(): publish now; returns an error code
  STOP = 3, // stop()
  PUBLISHED = 4, // the publish's callback (arg: its error)
  SUBSCRIBED = 5, // a subscription's callback (arg: its Topic bit; third argument: its error)
  EMIT = 6, // an event for the application: (Op.EMIT, type, reportId, code, message)
}

/** The running agent's numbers: where they are in ring.ts's S, from At.AGENT to At.RING (a typed array of their
 * own would cost some 5 JsVars more). Zeroed by start(). Report ids do not fit: the awaited ones are kept as
 * their low 32 bits, enough to match a response among four; the id in flight is lastId (no other is made while
 * a publish is in flight). writeReport's info is S itself: S[At.DROPPED], list entries the report dropped to fit
 * the buffer; S[At.OVF], connections that found no slot. */
const enum Num {
  AWAITED = At.AGENT, // 4 ids awaiting a response, their low 32 bits (0: none)
  AWAITED_COUNT = 4,
  TIMER = At.AGENT + 4, // the interval's handle (0: none: Espruino's clearInterval(undefined) throws)
  TIMER_MS = At.AGENT + 5, // the interval it runs at, whole milliseconds
  LINK_UP = At.AGENT + 6, // client connected as far as its events tell (taken as connected at start: a client
  // that is not holds the subscriptions until it is, or refuses them: then they are asked again)
  GRANTED = At.AGENT + 7, // Topic bits
  ASKED = At.AGENT + 8, // Topic bits: subscribe sent, no answer yet
  PUBLISHING = At.AGENT + 9, // a publish is in flight
  DUE = At.AGENT + 10, // a report is wanted
  NEXT_AWAITED = At.AGENT + 11, // where the next published id goes among the awaited ones
  JSON = At.AGENT + 12, // 1: JSON, 0: CBOR
  LONG_TAGS = At.AGENT + 13,
  MAX_BYTES = At.AGENT + 14, // bufferSize: the most bytes a report may take
  CARRIED_OVF = At.AGENT + 15, // what the report in flight carried of S[At.OVF] (of NS: at Stat.CARRIED)
  // (the last: ring.ts keeps 16, At.AGENT to At.RING)
}

/** Bits of the subscription state: a topic granted, or asked and not answered yet. */
const enum Topic {
  ACCEPTED = 1,
  REJECTED = 2,
  BOTH = 3,
}

/** Node's: a report goes to a client there as bytes, not as a string (Node's clients write strings as UTF-8). */
declare var Buffer: any;

/** setInterval with an argument for the callback (Espruino's and Node's pass it on; the typings omit it). */
type Every = (callback: any, ms: number, arg: any) => any;

const enum Limit {
  MAX_PERIOD = 86400,
  DEFAULT_PERIOD = 300,
  DEFAULT_BUFFER = 512,
  MIN_BUFFER = 64,
  MAX_BUFFER = 65535,
  MAX_THING_NAME = 128,
  CLOCK_SET = 1577836800000, // 2020-01-01 in ms: below it the clock is taken as not set
  IDS_RESERVED_COUNTING = 1000, // ids reserved per Storage write while the clock is not set
  IDS_RESERVED_CLOCK = 86400000, // a day of milliseconds, while ids are clock time
}

var period = Limit.DEFAULT_PERIOD as number,
  minPeriod = Limit.DEFAULT_PERIOD as number,
  metricsFlags = Flag.ALL as number,
  lastId = 0, // last report id used
  reservedId = -1, // highest report id reserved in Storage (-1: not read yet)
  /** The running agent (Op above), null while stopped. */
  running: any = null;

export function start(info: any): number {
  // start()'s variables are the running agent's state: each one costs RAM while it runs, so there are few,
  // the numbers are in S (Num), and `agent` holds the previous minimum period until it is the agent.
  var client = info && info.mqtt,
    callback: any,
    custom: any,
    topic: string, // the report topic; responses come on topic + "/accepted" and "/rejected"
    agent: any = minPeriod;
  if (running) return Code.ALREADY_STARTED;
  if (
    !(client && client.publish && client.subscribe && client.on) ||
    typeof info.thingName !== "string" ||
    info.thingName.length > Limit.MAX_THING_NAME ||
    !/^[\w:-]+$/.test(info.thingName) || // Espruino's regular expressions have no {m,n}
    (info.callback && typeof info.callback !== "function") ||
    (info.format && info.format !== "cbor" && info.format !== "json") ||
    !((minPeriod = info.minPeriod != null ? info.minPeriod : Limit.DEFAULT_PERIOD) > 0) ||
    (info.slots != null && !(info.slots >= 1 && info.slots <= 255)) ||
    !((info.bufferSize || Limit.DEFAULT_BUFFER) >= Limit.MIN_BUFFER && (info.bufferSize || Limit.DEFAULT_BUFFER) <= Limit.MAX_BUFFER)
  ) {
    minPeriod = agent;
    return Code.INVALID_INPUT;
  }
  try {
    setSlots(info.slots); // the ring, and in it the agent's numbers
  } catch (x) {
    minPeriod = agent;
    return Code.NO_MEMORY;
  }
  // zeroed here, not by stop(): an earlier run stopped by the application's callback while it wrote a report
  // still ends that call (`custom` counts: a variable start() keeps anyway)
  for (custom = At.AGENT; custom < At.RING; custom++) S[custom] = 0;
  // last: the period against the new minimum (setPeriod changes nothing on error); its code waits in `custom`,
  // not in a variable of its own, which the agent's closure would keep
  if ((custom = setPeriod(info.period != null ? info.period : period))) {
    minPeriod = agent;
    return custom;
  }
  callback = info.callback;
  custom = info.custom || null;
  S[Num.JSON] = info.format === "json" ? 1 : 0;
  S[Num.LONG_TAGS] = info.longTags ? 1 : 0;
  S[Num.LINK_UP] = 1;
  S[Num.MAX_BYTES] = info.bufferSize || Limit.DEFAULT_BUFFER;
  topic = "$aws/things/" + info.thingName + "/defender/metrics/" + (S[Num.JSON] ? "json" : "cbor");
  info = 0; // not the caller's object

  // Parameters from `arguments` (a named parameter costs a JsVar for as long as the function exists); the
  // nested functions take named ones (Espruino 2v29 would give them this function's `arguments`).
  // What a call does is written in line, not in nested functions: every function nested here is made at every
  // call, and the ones that are made still exist while the report is published (the peak). The message branch
  // makes its own; events go out through the agent itself (Op.EMIT).
  running = agent = function (): any {
    // (its second argument is read where it is used: a local would cost a JsVar while the report is published)
    var op = arguments[0],
      id,
      doc: any;

    try {
      if (running !== agent) return Code.NOT_STARTED; // a callback of an earlier run
      if (op === Op.EMIT) {
        // the application's callback, with a new event: (Op.EMIT, type, reportId, code, message); code: an error
        // code, the service's ErrorCode, or a count; message: text (from an Error, its message). Here, not in a
        // function of its own, which would cost its JsVars for as long as the module is loaded.
        try {
          if (callback) callback({ type: arguments[1], reportId: arguments[2], code: arguments[3], message: arguments[4] ? "" + (arguments[4].message || arguments[4]) : "" });
        } catch (x) {
          // the application's callback must not break the agent
        }
        return;
      }
      if (typeof op === "string") {
        S[Num.LINK_UP] = 0; // "disconnected"
        return;
      }
      if (typeof op === "object") {
        // "message": a response on topic/accepted or topic/rejected, matched by report id. A function made in
        // this branch, not declared above: a declared one would be made at every call, a report's included.
        return (function (message: any): void {
          var name = message.topic,
            verdict = name === topic + "/accepted" ? Event.METRICS_ACCEPTED : name === topic + "/rejected" ? Event.METRICS_REJECTED : 0,
            body: any,
            id = 0,
            status: any = "undecodable",
            code: any,
            text: any,
            k;

          /** The service's response map from CBOR: maps, arrays, strings, integers, true, false, null; a float (a
           * timestamp sent as one) decodes to null, a tag to its value. Throws on bad input. Without recursion: a
           * recursive closure made per call leaks on Espruino 2v29 (docs/memory.md). */
          function decodeCbor(text: string): any {
            var at = 0,
              open: any[] = [], // containers being filled: [container, items left, is a map, its pending key]
              inner: any,
              head,
              major,
              size,
              n,
              value: any,
              result: any;
            for (;;) {
              head = text.charCodeAt(at++);
              major = head >> 5;
              size = head & 31;
              if (size > 27 || head !== head) throw 0;
              if (size > 23) for (n = 1 << (size - 24), size = 0; n--; ) size = size * 256 + text.charCodeAt(at++);
              if (major === 6) continue; // a tag: its value follows
              if (major < 2) value = major ? -1 - size : size;
              else if (major < 4) {
                value = text.substr(at, size);
                at += size;
              } else if (major < 6) value = major < 5 ? [] : {};
              else value = size === 20 ? false : size === 21 ? true : null;
              inner = open[open.length - 1];
              if (!inner) result = value;
              else if (!inner[2]) inner[0].push(value);
              else if (inner[1] % 2 === 0) inner[3] = value; // a map's key
              else inner[0][inner[3]] = value;
              if (inner) inner[1]--;
              if ((major === 4 || major === 5) && size) open.push([value, major === 5 ? 2 * size : size, major === 5, 0]);
              while (open.length && !open[open.length - 1][1]) open.pop();
              if (!open.length) return result;
            }
          }

          if (!verdict) return;
          try {
            body = S[Num.JSON] ? JSON.parse(message.message) : decodeCbor(message.message);
            // what the events need, taken before one is emitted: the decoded response is let go first
            id = body.reportId;
            status = body.status;
            body = body.statusDetails || {};
            code = body.ErrorCode;
            text = body.ErrorMessage;
          } catch (x) {
            // undecodable
          }
          body = message = 0;
          for (k = Num.AWAITED; k < Num.AWAITED + Num.AWAITED_COUNT; k++) {
            if (id && S[k] === (id | 0)) {
              S[k] = 0;
              return verdict === Event.METRICS_ACCEPTED ? agent(Op.EMIT, verdict, id, 0, 0) : agent(Op.EMIT, verdict, id, code, text);
            }
          }
          agent(Op.EMIT, Event.UNEXPECTED_RESPONSE, +id || 0, 0, status);
        })(op);
      }
      if (op === Op.STOP) {
        running = null;
        if (S[Num.TIMER]) clearInterval(S[Num.TIMER]);
        minPeriod = Limit.DEFAULT_PERIOD;
        try {
          client.removeListener("connected", agent);
          client.removeListener("disconnected", agent);
          client.removeListener("message", agent);
          if (client.unsubscribe) {
            client.unsubscribe(topic + "/accepted");
            client.unsubscribe(topic + "/rejected");
          }
        } catch (x) {
          // a client that is gone: nothing more to release
        }
        return Code.SUCCESS;
      }
      if (op === Op.PUBLISHED) {
        // the next report may be written; on success what the report carried has been reported, on failure it
        // stays for the next report
        S[Num.PUBLISHING] = 0;
        if (arguments[1]) return agent(Op.EMIT, Event.PUBLISH_FAILED, lastId, Code.MQTT_FAILURE, arguments[1]);
        NS[0] -= NS[Stat.CARRIED];
        NS[1] -= NS[Stat.CARRIED + 1];
        NS[2] -= NS[Stat.CARRIED + 2];
        NS[3] -= NS[Stat.CARRIED + 3];
        S[At.OVF] -= S[Num.CARRIED_OVF];
        return;
      }
      if (op === Op.SUBSCRIBED) {
        S[Num.ASKED] &= ~arguments[1];
        if (arguments[2]) return agent(Op.EMIT, Event.SUBSCRIBE_FAILED, 0, Code.MQTT_FAILURE, arguments[2]);
        S[Num.GRANTED] |= arguments[1]; // and if a report waited for it, it goes now
      } else if (op === Op.REPORT) {
        if (!S[Num.LINK_UP]) return Code.MQTT_FAILURE;
        if (S[Num.PUBLISHING]) return Code.BUSY;
        S[Num.DUE] = 1;
      } else {
        if (op === Op.TICK) {
          // a new period takes effect here, at the next iteration
          if (S[Num.TIMER_MS] !== ((period * 1000) | 0)) {
            if (S[Num.TIMER]) clearInterval(S[Num.TIMER]);
            S[Num.TIMER] = (setInterval as Every)(agent, (S[Num.TIMER_MS] = period * 1000), Op.TICK);
          }
          S[Num.DUE] = S[Num.LINK_UP]; // down: this tick is skipped; after the reconnect the next tick reports
        } else S[Num.LINK_UP] = 1; // "connected"
        // the response topics not granted nor asked yet. The client's callbacks are the agent, bound to what
        // they answer: a closure made here would keep this call's scope until the answer.
        // (a local made here, where its `var` runs: not while a report is written and published)
        for (var which: number = Topic.ACCEPTED; which <= Topic.REJECTED; which++) {
          if (!((S[Num.GRANTED] | S[Num.ASKED]) & which)) {
            S[Num.ASKED] |= which;
            try {
              client.subscribe(topic + (which === Topic.ACCEPTED ? "/accepted" : "/rejected"), 1, agent.bind(null, Op.SUBSCRIBED, which));
            } catch (x) {
              agent(Op.SUBSCRIBED, which, x);
            }
          }
        }
        if (op !== Op.TICK) return; // "connected": the topics whose subscription failed are asked again
      }
      if (!S[Num.DUE] || S[Num.PUBLISHING] || S[Num.GRANTED] !== Topic.BOTH) return Code.SUCCESS;
      // Publish a report: its id, reserved in Storage ahead of use
      S[Num.DUE] = 0;
      // the time now, in ms, then the id (one local less while the report is written)
      id = Math.floor((typeof getTime === "function" ? getTime() : Date.now() / 1000) * 1000);
      if (reservedId < 0) {
        try {
          lastId = Math.max(lastId, +(require("Storage").read("defender.rid") as any) || 0);
        } catch (x) {
          // no Storage (plain Node): ids still increase while the module lives
        }
        reservedId = lastId;
      }
      id = lastId = id > Limit.CLOCK_SET && id > lastId ? id : lastId + 1;
      if (id > reservedId) {
        reservedId = id + (id > Limit.CLOCK_SET ? Limit.IDS_RESERVED_CLOCK : Limit.IDS_RESERVED_COUNTING);
        try {
          require("Storage").write("defender.rid", "" + reservedId);
        } catch (x) {
          // no Storage, or a full one: the ids still increase until the next reboot
        }
      }
      // what this report carries; subtracted from the counters at the report's PUBACK (not here: a report whose
      // publish fails leaves its counts to the next one)
      // (written out, not a loop: a loop costs a local while the report is published, and its body is read again
      // at every turn)
      NS[Stat.CARRIED] = metricsFlags & Flag.NET_STATS ? NS[0] : 0;
      NS[Stat.CARRIED + 1] = metricsFlags & Flag.NET_STATS ? NS[1] : 0;
      NS[Stat.CARRIED + 2] = metricsFlags & Flag.NET_STATS ? NS[2] : 0;
      NS[Stat.CARRIED + 3] = metricsFlags & Flag.NET_STATS ? NS[3] : 0;
      S[Num.CARRIED_OVF] = S[At.OVF];
      doc = writeReport(S[Num.MAX_BYTES], S[Num.JSON], S[Num.LONG_TAGS], metricsFlags, id, custom, S);
      if (typeof doc === "number") {
        return agent(
          Op.EMIT,
          Event.REPORT_FAILED,
          id,
          doc === Err.SPACE ? Code.NO_MEMORY : doc === Err.CUSTOM ? Code.INVALID_INPUT : Code.INTERNAL_FAILURE,
          doc === Err.CUSTOM ? badMetric : 0,
        );
      }
      if (S[At.DROPPED]) agent(Op.EMIT, Event.REPORT_TRUNCATED, id, S[At.DROPPED], 0);
      if (S[At.OVF]) agent(Op.EMIT, Event.SLOTS_OVERFLOWED, id, S[At.OVF], 0);
      // the application's callback may have stopped this run (and started another, whose numbers these are now)
      if (running !== agent) return Code.SUCCESS;
      S[Num.AWAITED + S[Num.NEXT_AWAITED]] = id;
      S[Num.NEXT_AWAITED] = (S[Num.NEXT_AWAITED] + 1) % Num.AWAITED_COUNT;
      S[Num.PUBLISHING] = 1;
      try {
        // bytes as a string on Espruino; Node's clients would write a string as UTF-8
        client.publish(topic, typeof E === "undefined" ? Buffer.from(doc, "latin1") : doc, 1, agent.bind(null, Op.PUBLISHED));
      } catch (x) {
        agent(Op.PUBLISHED, x);
      }
    } catch (x) {
      // never throw out of a timer or a client callback, but say what went wrong
      agent(Op.EMIT, Event.REPORT_FAILED, 0, Code.INTERNAL_FAILURE, x);
    }
    return Code.SUCCESS;
  };

  client.on("connected", agent);
  client.on("disconnected", agent);
  client.on("message", agent);
  agent(); // as "connected": subscribes
  // the interval starts now; the first tick reports
  S[Num.TIMER] = (setInterval as Every)(agent, (S[Num.TIMER_MS] = period * 1000), Op.TICK);
  return Code.SUCCESS;
}

export function stop(): number {
  return running ? running(Op.STOP) : Code.NOT_STARTED;
}

// The exported functions below read their parameters from `arguments`: a named parameter costs a JsVar for as
// long as the module is loaded.
export function setPeriod(seconds: number): number;
export function setPeriod(): number {
  var seconds = arguments[0],
    code =
    typeof seconds !== "number" || seconds !== seconds
      ? Code.INVALID_INPUT
      : seconds < minPeriod
        ? Code.PERIOD_TOO_SHORT
        : seconds > Limit.MAX_PERIOD
          ? Code.PERIOD_TOO_LONG
          : Code.SUCCESS;
  if (!code) period = seconds;
  return code;
}

export function getPeriod(): number {
  return period;
}

/** Group g's flags sit at bit 0, 4, 6, 8, 9 of report.ts's Flag bits, 3, 2, 2, 1, 1 of them. */
export function setMetrics(group: number, flags: number): number;
export function setMetrics(): number {
  var group = arguments[0],
    flags = arguments[1],
    shift = group < 1 ? 0 : group < 3 ? 2 * group + 2 : group + 5,
    width = group < 1 ? 7 : group < 3 ? 3 : 1;
  if (!(group >= 0 && group <= 4) || group % 1 || typeof flags !== "number") return Code.INVALID_INPUT;
  metricsFlags = (metricsFlags & ~(width << shift)) | ((flags & width) << shift);
  return Code.SUCCESS;
}

/** Publishes a report now (the periodic ones go on as before). */
export function report(): number {
  return running ? running(Op.REPORT) : Code.NOT_STARTED;
}

export function strerror(code: number): string;
export function strerror(): string {
  return (
    "SUCCESS INVALID_INPUT ALREADY_STARTED PERIOD_TOO_SHORT NO_MEMORY INTERNAL_FAILURE PERIOD_TOO_LONG " +
    "NOT_STARTED MQTT_FAILURE BUSY"
  ).split(" ")[arguments[0]] || "UNKNOWN";
}
