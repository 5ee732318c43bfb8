// The Device Defender agent: the seed (FreeRTOS) library's API over any client with tinymqtt's API
// (README, "Agent API").
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
// The report is written into one preallocated buffer and published (QoS 1); while that publish is in flight
// (until its callback) no other report is written. A tick while the client is down, or busy, is skipped: after a
// reconnect the next tick reports, never a burst. Responses are matched by report id against the last few
// published ids. Events reuse one object: read it inside the callback, do not keep it.
// The two response topics are subscribed once, at start; a topic is subscribed again only after its subscription
// failed (the client itself restores granted subscriptions after a reconnect).
// Network counters and the slot-overflow count are deltas "since the last acknowledged report": what a report
// carried is remembered when it is written and subtracted when its publish is acknowledged, so a report whose
// publish failed leaves its counts to the next one, and no count is in two acknowledged reports.
// Report ids strictly increase: epoch milliseconds while the clock is set (after 2020), else one more than the
// last; the highest id that may have been used is reserved ahead in Storage (1,000 ids, or a day of milliseconds,
// per write), so ids keep increasing across reboots.
//
// Memory on Espruino (README, "Memory on Espruino"): a function costs RAM for as long as it exists, a function
// nested in one that has not run costs nothing. So the running agent is one closure, made by start() and
// dropped by stop(): the interval, the client's three events, stop() and report() all call it (Op below). What it
// does per call (write a report, decode a response, ...) is nested in it and made only while that call runs.
// What outlives a run (period, metrics flags, report ids) is module-level.
import { setSlots, S, NS, OVF } from "./ring";
import { writeReport, badMetric, ERR_SPACE, ERR_CUSTOM } from "./report";

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
  SUBSCRIBED = 5, // a subscription's callback (arg: its error); topic in Topic
}

/** The running agent's numbers (one Float64Array: report ids are doubles, and a typed array costs little). */
const enum Num {
  DROPPED = 0, // writeReport's info: list entries dropped to fit the buffer
  OVERFLOWED = 1, // and connections that found no slot
  AWAITED = 2, // 4 ids awaiting a response (0: none)
  AWAITED_COUNT = 4,
  IN_FLIGHT = 6, // id of the report being published
  CARRIED = 7, // what that report carried: NS[0..3] (bytes in, out, packets in, out) then S[OVF]
  CARRIED_OVF = 11,
  SIZE = 12,
}

/** Bits of the subscription state: a topic granted, or asked and not answered yet. */
const enum Topic {
  ACCEPTED = 1,
  REJECTED = 2,
  BOTH = 3,
}

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
  IDS_RESERVED_CLOCK = 86400000, // a day of milliseconds, while it is
}

/** report.ts F_* flags: everything, and the network stats. */
const enum Flag {
  ALL = 0x3ff,
  NET_STATS = 0x100,
}

var period = Limit.DEFAULT_PERIOD as number,
  minPeriod = Limit.DEFAULT_PERIOD as number,
  metricsFlags = Flag.ALL as number,
  lastId = 0, // last report id used
  reservedId = -1, // highest report id reserved in Storage (-1: not read yet)
  /** The running agent (Op above), null while stopped. */
  running: any = null;

export function start(info: any): number {
  // every var declared up front: Espruino does not hoist var. These are the running agent's state: every one
  // costs RAM while it runs, so the checks below use the ones that keep their result.
  var client = info && info.mqtt,
    previousMin = minPeriod,
    slots = info && info.slots,
    json: any = info && info.format, // then 1 JSON, 0 CBOR
    longTags: any = info && info.longTags ? 1 : 0,
    buffer: any = (info && info.bufferSize) || Limit.DEFAULT_BUFFER,
    nums: any,
    callback: any,
    event: any, // the one event object (with a callback)
    custom: any,
    topic: string, // the report topic; responses come on topic + "/accepted" and "/rejected"
    timer: any = 0, // timer handles start as 0: Espruino's clearTimeout(undefined) throws
    timerPeriod = 0, // period the interval runs at
    linkUp = 1, // client connected as far as its events tell; taken as connected at start (a client that is
    // not holds the subscriptions until it is, or refuses them: then they are asked again)
    granted = 0, // Topic bits
    asked = 0, // Topic bits: subscribe sent, no answer yet
    publishing = 0, // a publish is in flight
    due = 0, // a report is wanted
    nextAwaited = 0, // where the next published id goes among the awaited ones
    code: number,
    agent: any;
  if (running) return Code.ALREADY_STARTED;
  if (
    !(client && client.publish && client.subscribe && client.on) ||
    typeof info.thingName !== "string" ||
    info.thingName.length > Limit.MAX_THING_NAME ||
    !/^[\w:-]+$/.test(info.thingName) || // Espruino's regular expressions have no {m,n}
    (info.callback && typeof info.callback !== "function") ||
    (json && json !== "cbor" && json !== "json") ||
    !((minPeriod = info.minPeriod != null ? info.minPeriod : Limit.DEFAULT_PERIOD) > 0) ||
    (slots != null && !(slots >= 1 && slots <= 255)) ||
    !(buffer >= Limit.MIN_BUFFER && buffer <= Limit.MAX_BUFFER)
  ) {
    minPeriod = previousMin;
    return Code.INVALID_INPUT;
  }
  try {
    buffer = new Uint8Array(buffer);
    nums = new Float64Array(Num.SIZE);
  } catch (x) {
    minPeriod = previousMin;
    return Code.NO_MEMORY;
  }
  // last: the period against the new minimum (setPeriod changes nothing on error)
  if ((code = setPeriod(info.period != null ? info.period : period))) {
    minPeriod = previousMin;
    return code;
  }
  if (slots) setSlots(slots);
  callback = info.callback;
  event = callback ? { type: 0, reportId: 0, code: 0, message: "" } : 0;
  custom = info.custom || null;
  json = json === "json" ? 1 : 0;
  topic = "$aws/things/" + info.thingName + "/defender/metrics/" + (json ? "json" : "cbor");
  info = 0; // not the caller's object

  running = agent = function (op?: any, arg?: any, topicBit?: any): any {
    var i;

    /** Calls the application back with the one event object; code: an error code, the service's ErrorCode, or a
     * count; message: text (from an Error, its message). */
    function emit(type: number, id: number, code: any, message: any): void {
      if (event) {
        event.type = type;
        event.reportId = id;
        event.code = code;
        event.message = message ? "" + (message.message || message) : "";
        try {
          callback(event);
        } catch (x) {
          // the application's callback must not break the agent
        }
      }
    }

    /** Asks for the response topics not granted nor asked yet (at start, and after a subscription failed). */
    function subscribe(): void {
      var which;
      /** A subscription's callback (made per subscribe: it lives until the SUBACK). */
      function subscribed(topicBit: number): any {
        return function (err?: any): void {
          agent(Op.SUBSCRIBED, err, topicBit);
        };
      }
      for (which = Topic.ACCEPTED; which <= Topic.REJECTED; which++) {
        if (!((granted | asked) & which)) {
          asked |= which;
          try {
            client.subscribe(topic + (which === Topic.ACCEPTED ? "/accepted" : "/rejected"), 1, subscribed(which));
          } catch (x) {
            agent(Op.SUBSCRIBED, x, which);
          }
        }
      }
    }

    /** Writes the report and publishes it; remembers what it carried (subtracted once it is acknowledged). */
    function publish(): void {
      var id = nextId(),
        length,
        i;

      /** The next report id, reserved in Storage ahead of use. */
      function nextId(): number {
        var now = Math.floor((typeof getTime === "function" ? getTime() : Date.now() / 1000) * 1000),
          id;
        if (reservedId < 0) {
          try {
            lastId = Math.max(lastId, +(require("Storage").read("defender.rid") as any) || 0);
          } catch (x) {
            // no Storage (plain Node): ids still increase while the module lives
          }
          reservedId = lastId;
        }
        id = lastId = now > Limit.CLOCK_SET && now > lastId ? now : lastId + 1;
        if (id > reservedId) {
          reservedId = id + (id === now ? Limit.IDS_RESERVED_CLOCK : Limit.IDS_RESERVED_COUNTING);
          try {
            require("Storage").write("defender.rid", "" + reservedId);
          } catch (x) {
            // no Storage, or a full one: the ids still increase until the next reboot
          }
        }
        return id;
      }

      // what this report carries; the agent subtracts it from the counters at the report's PUBACK (not here: a
      // report whose publish fails leaves its counts to the next one)
      for (i = 0; i < 4; i++) nums[Num.CARRIED + i] = metricsFlags & Flag.NET_STATS ? NS[i] : 0;
      nums[Num.CARRIED_OVF] = S[OVF];
      length = writeReport(buffer, json, longTags, metricsFlags, id, custom, nums);
      if (length < 0) {
        return emit(
          Event.REPORT_FAILED,
          id,
          length === ERR_SPACE ? Code.NO_MEMORY : length === ERR_CUSTOM ? Code.INVALID_INPUT : Code.INTERNAL_FAILURE,
          length === ERR_CUSTOM ? badMetric : 0,
        );
      }
      if (nums[Num.DROPPED]) emit(Event.REPORT_TRUNCATED, id, nums[Num.DROPPED], 0);
      if (nums[Num.OVERFLOWED]) emit(Event.SLOTS_OVERFLOWED, id, nums[Num.OVERFLOWED], 0);
      nums[Num.IN_FLIGHT] = nums[Num.AWAITED + nextAwaited] = id;
      nextAwaited = (nextAwaited + 1) % Num.AWAITED_COUNT;
      publishing = 1;
      try {
        client.publish(topic, buffer.subarray(0, length), 1, function (err?: any): void {
          agent(Op.PUBLISHED, err);
        });
      } catch (x) {
        agent(Op.PUBLISHED, x);
      }
    }

    /** A response on topic/accepted or topic/rejected, matched by report id. */
    function respond(message: any): void {
      var name = message.topic,
        verdict = name === topic + "/accepted" ? Event.METRICS_ACCEPTED : name === topic + "/rejected" ? Event.METRICS_REJECTED : 0,
        body: any = 0,
        id = 0,
        details: any,
        i;

      /** The service's response map from CBOR: maps, arrays, strings, integers, true, false, null; a float (a
       * timestamp sent as one) decodes to null, a tag to its value. Throws on bad input. Without recursion: a
       * recursive closure made per call leaks on Espruino 2v29 (README, "Memory on Espruino"). */
      function decodeCbor(text: string): any {
        var at = 0,
          open: any[] = [], // containers being filled: [container, items left, is a map, its pending key]
          inner: any,
          head,
          major,
          arg,
          n,
          value: any,
          result: any;
        for (;;) {
          head = text.charCodeAt(at++);
          major = head >> 5;
          arg = head & 31;
          if (arg > 27 || head !== head) throw 0;
          if (arg > 23) for (n = 1 << (arg - 24), arg = 0; n--; ) arg = arg * 256 + text.charCodeAt(at++);
          if (major === 6) continue; // a tag: its value follows
          if (major < 2) value = major ? -1 - arg : arg;
          else if (major < 4) {
            value = text.substr(at, arg);
            at += arg;
          } else if (major < 6) value = major < 5 ? [] : {};
          else value = arg === 20 ? false : arg === 21 ? true : null;
          inner = open[open.length - 1];
          if (!inner) result = value;
          else if (!inner[2]) inner[0].push(value);
          else if (inner[1] % 2 === 0) inner[3] = value; // a map's key
          else inner[0][inner[3]] = value;
          if (inner) inner[1]--;
          if ((major === 4 || major === 5) && arg) open.push([value, major === 5 ? 2 * arg : arg, major === 5, 0]);
          while (open.length && !open[open.length - 1][1]) open.pop();
          if (!open.length) return result;
        }
      }

      if (!verdict) return;
      try {
        body = json ? JSON.parse(message.message) : decodeCbor(message.message);
        id = body.reportId;
      } catch (x) {
        body = 0;
      }
      for (i = Num.AWAITED; i < Num.AWAITED + Num.AWAITED_COUNT; i++) {
        if (id && nums[i] === id) {
          nums[i] = 0;
          details = body.statusDetails || {};
          return verdict === Event.METRICS_ACCEPTED
            ? emit(verdict, id, 0, 0)
            : emit(verdict, id, details.ErrorCode, details.ErrorMessage);
        }
      }
      emit(Event.UNEXPECTED_RESPONSE, +id || 0, 0, body ? body.status : "undecodable");
    }

    try {
      if (running !== agent) return Code.NOT_STARTED; // a callback of an earlier run
      if (op === undefined) {
        // "connected": the topics whose subscription failed are asked again
        linkUp = 1;
        return subscribe();
      }
      if (typeof op === "string") {
        linkUp = 0; // "disconnected"
        return;
      }
      if (typeof op === "object") return respond(op); // "message"
      if (op === Op.STOP) {
        running = null;
        clearInterval(timer);
        timer = 0;
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
        // the buffer is free again; on success what the report carried has been reported, on failure it stays
        // for the next report
        publishing = 0;
        if (arg) return emit(Event.PUBLISH_FAILED, nums[Num.IN_FLIGHT], Code.MQTT_FAILURE, arg);
        for (i = 0; i < 4; i++) NS[i] -= nums[Num.CARRIED + i];
        S[OVF] -= nums[Num.CARRIED_OVF];
        return;
      }
      if (op === Op.SUBSCRIBED) {
        asked &= ~topicBit;
        if (arg) return emit(Event.SUBSCRIBE_FAILED, 0, Code.MQTT_FAILURE, arg);
        granted |= topicBit; // and if a report waited for it, it goes now
      } else if (op === Op.REPORT) {
        if (!linkUp) return Code.MQTT_FAILURE;
        if (publishing) return Code.BUSY;
        due = 1;
      } else {
        // the interval: a new period takes effect here, at the next iteration
        if (timerPeriod !== period) {
          clearInterval(timer);
          timer = (setInterval as Every)(agent, (timerPeriod = period) * 1000, Op.TICK);
        }
        due = linkUp; // down: this tick is skipped; after the reconnect the next tick reports
        subscribe();
      }
      if (due && !publishing && granted === Topic.BOTH) {
        due = 0;
        publish();
      }
    } catch (x) {
      // never throw out of a timer or a client callback, but say what went wrong
      emit(Event.REPORT_FAILED, 0, Code.INTERNAL_FAILURE, x);
    }
    return Code.SUCCESS;
  };

  client.on("connected", agent);
  client.on("disconnected", agent);
  client.on("message", agent);
  agent(); // as "connected": subscribes
  timer = (setInterval as Every)(agent, (timerPeriod = period) * 1000, Op.TICK);
  return Code.SUCCESS;
}

export function stop(): number {
  return running ? running(Op.STOP) : Code.NOT_STARTED;
}

export function setPeriod(seconds: number): number {
  var code =
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

/** Group g's flags sit at bit 0, 4, 6, 8, 9 of report.ts's F_* flags, 3, 2, 2, 1, 1 of them. */
export function setMetrics(group: number, flags: number): number {
  var shift = group < 1 ? 0 : group < 3 ? 2 * group + 2 : group + 5,
    width = group < 1 ? 7 : group < 3 ? 3 : 1;
  if (!(group >= 0 && group <= 4) || group % 1 || typeof flags !== "number") return Code.INVALID_INPUT;
  metricsFlags = (metricsFlags & ~(width << shift)) | ((flags & width) << shift);
  return Code.SUCCESS;
}

/** Publishes a report now (the periodic ones go on as before). */
export function report(): number {
  return running ? running(Op.REPORT) : Code.NOT_STARTED;
}

export function strerror(code: number): string {
  return (
    "SUCCESS INVALID_INPUT ALREADY_STARTED PERIOD_TOO_SHORT NO_MEMORY INTERNAL_FAILURE PERIOD_TOO_LONG " +
    "NOT_STARTED MQTT_FAILURE BUSY"
  ).split(" ")[code] || "UNKNOWN";
}
