// Report writer: the whole Device Defender metrics document from the state in ring.ts, into the caller's
// Uint8Array, as canonical CBOR (RFC 8949: definite lengths, shortest integer heads, floats in preferred form,
// keys in canonical order) or JSON (RFC 8259, UTF-8).
//
// Why our own encoder: the npm package cbor-js does not even parse on Espruino (`undefined` as a parameter name)
// and costs 320 JsVars evaluated from RAM; general-purpose encoders build objects and arrays per report.
//
// Speed on Espruino, which reads a function's whole source again at every call (about 0.5 ms per kilobyte on an
// x86 core, string literals and nested functions included) and runs native code fast: the constant parts of the
// document (keys with their container heads, the version) come encoded from runs.ts (generated from the tag
// table, in the style asked for; CBOR's written in place, JSON's read a run at a time from one text where it
// lies, in flash on the device), and the document is built as one byte string, appended to in
// place (`+=` on a string held by one variable: no copy, no array of parts), then copied into the buffer at once
// (or handed to the agent, in one block on Espruino). writeReport holds the hot path only, its per-key helper is
// a one-liner, the slot loop stops at the last established slot, and the custom metrics (checked against the
// rules of src/common/spec.ts before anything is written, then written) live in a function of their own, read
// only for reports that have them. Nothing is kept between reports: the run in use, the document and the nested
// helpers exist only while a report is written.
// Measured by `npm run bench -- report` against cbor-js on the interpreter.
//
// If the document does not fit the buffer, every list is cut to its first K entries, K as large as fits
// (binary search over passes); totals are never cut.
//
// Internal API (the agent calls this; index.ts exports writeReport as is):
//   writeReport(buf, json, longTags, flags, reportId, custom, info) -> length >= 0, or an error < 0
//     buf       Uint8Array the document is written into (from offset 0); or a number, the most bytes the
//               document may take: then the result is the document itself, a byte string (what the agent
//               publishes: no buffer of its own between reports), or an error < 0
//     json      true: JSON; false: canonical CBOR
//     longTags  true: long tag names ("header", ...); false: short ("hed", ...)
//     flags     which metrics, any of Flag below (0xffffffff: all)
//     reportId  integer 0 .. 2^53 (epoch milliseconds fit)
//     custom    null, an object { name: { number: n } | { number_list: [n..] } | { string_list: [s..] } |
//               { ip_list: [s..] } }, or a function returning such an object (called once per report);
//               written when flags has Flag.CUSTOM
//     info      optional array-like, filled when the result is >= 0: info[0] = list entries dropped to fit the
//               buffer (0: complete), info[1] = connections that found no free slot since the last reset
//   Counters are read, never reset: network_stats carries NS[] as it is (the agent subtracts what an
//   acknowledged report carried).
//   Errors (Err): SPACE (even the smallest form, every list empty, does not fit), INPUT (bad buffer or report
//   id), CUSTOM (a custom metric AWS would refuse, named in badMetric, or the provider threw, or did not give an
//   object: badMetric "").
// Every list is capped at Limit.LIST (50) entries, as AWS's own agent does; `total` keeps the true count. A
// custom list longer than that is refused (AWS refuses it).
import { S, NS, At, Slot, Ports, setSlots } from "./ring";
import { Run, Short, Long, Style, Text, TotalFirst } from "./runs";
import { byteStrings } from "../common/utf8";
import { customMetricError, Limit } from "../common/spec";

/** Metrics flags: which parts a report holds. */
export const enum Flag {
  TCP_TOTAL = 0x1, // FreeRTOS: established connections total
  TCP_LOCAL = 0x2, // local port of each connection
  TCP_REMOTE = 0x4, // FreeRTOS: established connections remote address (the connections list)
  TCP_PORTS_TOTAL = 0x10,
  TCP_PORTS = 0x20,
  UDP_PORTS_TOTAL = 0x40, // the UDP flags are the TCP ports' ones, shifted left by 2
  UDP_PORTS = 0x80,
  NET_STATS = 0x100,
  CUSTOM = 0x200,
  ALL = 0x3ff,
}

export const enum Err {
  SPACE = -1,
  INPUT = -2,
  CUSTOM = -3,
}

/** After Err.CUSTOM: the name of the custom metric AWS would refuse ("" when the provider threw or gave no
 * object). */
export var badMetric = "";

/** CBOR major types, shifted into the initial byte. */
const enum Major {
  UINT = 0x00,
  NEGINT = 0x20,
  TEXT = 0x60,
  ARRAY = 0x80,
  MAP = 0xa0,
}

const enum Cbor {
  /** Argument in the next 1, 2, 4, 8 bytes: added to the major type. */
  ONE_BYTE = 24,
  TWO_BYTES = 25,
  FOUR_BYTES = 26,
  EIGHT_BYTES = 27,
  FLOAT16 = 0xf9,
  FLOAT32 = 0xfa,
  FLOAT64 = 0xfb,
}

const enum Number2 {
  /** 2^32: Espruino's integers are 32-bit, larger ones doubles (split them, never >>> or | on them). */
  TWO_32 = 4294967296,
  /** 2^53: the largest integer a double holds exactly. */
  TWO_53 = 9007199254740992,
}

/** What writeReport takes after its buffer or size. */
type ReportOptions = [json: any, longTags: any, flags: number, reportId: number, customMetrics: any, info?: { [i: number]: number }];

/** Into a buffer: the length, or an error < 0. */
export function writeReport(buf: Uint8Array, ...options: ReportOptions): number;
/** Of at most `size` bytes: the document as a byte string, or an error < 0. */
export function writeReport(size: number, ...options: ReportOptions): string | number;
// Parameters from `arguments` (a named parameter costs a JsVar for as long as the function exists); the nested
// helpers (made per report) take named ones: Espruino 2v29 would give them this function's `arguments`.
export function writeReport(): number | string {
  var buf: any = arguments[0],
    room: number = typeof buf === "number" ? buf : buf && buf.length, // the most bytes the document may take
    json = arguments[1],
    long = arguments[2],
    flags: number = arguments[3],
    reportId: number = arguments[4],
    info = arguments[6],
    run: any, // run(k): run k of the style; unset for CBOR, whose runs (Short, Long) are written in place
    names: any = null, // the custom metrics' names in canonical order (.values: the checked object); null: none
    doc = "",
    // the start of a map of n <= 4 entries (smallMap[n]): looked up, not a call (a call reads the callee's source
    // again). What separates entries and closes a map is written in place, (json ? "," : "") and
    // (json ? "}" : ""): a local holding it would cost 2 JsVars while the report is written.
    smallMap = json ? "{{{{{" : "\xa0\xa1\xa2\xa3\xa4",
    perList: number = Limit.LIST, // entries per list in this pass
    fits: number = Limit.LIST, // the largest perList known to fit (-1: none)
    tooBig: number = Limit.LIST + 1, // the smallest perList known not to fit (LIST + 1: first pass; -1: last pass)
    dropped = 0,
    sections; // how many metrics sections the document has

  /** A number: JSON text, or a CBOR head: an unsigned integer (0 <= n <= 2^53), or with `major` the start of a
   * map or array of n entries (JSON's "{" and "[" are written by the caller). One helper, not two: each nested
   * function is made at every report. */
  function uint(n: number, major?: any): string {
    return json ? "" + n : n < Cbor.ONE_BYTE ? String.fromCharCode((major | 0) + n) : head(major | 0, n);
  }

  /** A CBOR head: major type and argument n (24 <= n <= 2^53) in the fewest bytes, big-endian, each byte made by
   * division (Espruino's integers are 32-bit, larger ones doubles: no shift on them). No local, and as many
   * arguments as the head has bytes: each is a JsVar while the call runs, and a report's writing needs the most
   * memory in a head (its network counters'). */
  function head(major: number, n: number): string {
    return n < 256
      ? String.fromCharCode(major + Cbor.ONE_BYTE, n)
      : n < 65536
        ? String.fromCharCode(major + Cbor.TWO_BYTES, n >> 8, n & 255)
        : n < Number2.TWO_32
          ? String.fromCharCode(major + Cbor.FOUR_BYTES, Math.floor(n / 16777216), Math.floor(n / 65536) % 256, Math.floor(n / 256) % 256, n % 256)
          : String.fromCharCode(
              major + Cbor.EIGHT_BYTES,
              0, // n <= 2^53
              Math.floor(n / 281474976710656),
              Math.floor(n / 1099511627776) % 256,
              Math.floor(n / Number2.TWO_32) % 256,
              Math.floor(n / 16777216) % 256,
              Math.floor(n / 65536) % 256,
              Math.floor(n / 256) % 256,
              n % 256,
            );
  }

  if (!(room >= 0) || !(reportId >= 0 && reportId <= Number2.TWO_53) || reportId % 1) return Err.INPUT;
  badMetric = "";
  if (flags & Flag.CUSTOM && arguments[5] && (names = custom(arguments[5])) === 0) return Err.CUSTOM;
  if (!S) setSlots(); // a report before anything was tracked: the state exists, empty
  // CBOR's runs are written in place (Short, Long: CBOR has the speed target, and a run read costs a call, a
  // substring and atob); JSON's, and CBOR's when custom metrics need them, are read a run at a time from the text
  // that holds every style's (Text), where it lies. Espruino keeps a function's code where it was loaded from
  // (flash, for a module in Storage), and the code of one that only returns a value as that value's text:
  // styleRuns's is Text.ALL in its quotes, read there with no copy in RAM (a style's runs split from a string held
  // 54 to 75 JsVars while the report was written). Anywhere else (Node), or code in another form (pretokenised),
  // the string the function returns.
  if (json || names) {
    var text = (styleRuns as any)["\xffcod"],
      start = 1, // where the text starts: after its opening quote
      offsets: string; // the style's
    // (through call: terser would put the literal itself here, in the text read at every report)
    if (typeof text !== "string" || text.length !== Text.LENGTH + 2) (text = styleRuns.call(0)), (start = 0);
    offsets = text.substr(start + ((json ? Style.JSON : 0) + (long ? Style.LONG : 0)) * Text.OFFSETS, Text.OFFSETS);
    run = function (k: any): string {
      var from = start + (offsets.charCodeAt(2 * k) - Text.OFFSET_ZERO) * Text.OFFSET_BASE + offsets.charCodeAt(2 * k + 1) - Text.OFFSET_ZERO;
      // (k takes the run: one local less while a run is read)
      k = text.substring(from, start + (offsets.charCodeAt(2 * k + 2) - Text.OFFSET_ZERO) * Text.OFFSET_BASE + offsets.charCodeAt(2 * k + 3) - Text.OFFSET_ZERO);
      return json ? k : atob(k); // CBOR runs are in base64 there
    };
  }
  // the document is written as it comes, section by section and entry by entry, each appended to the string that
  // holds it: Espruino appends in place where `+=` finds a string held by one variable, where a concatenation
  // makes a copy (and an array of parts and its join would hold each part twice)
  sections =
    (flags & Flag.NET_STATS ? 1 : 0) +
    (flags & (Flag.TCP_TOTAL | Flag.TCP_REMOTE) ? 1 : 0) +
    (flags & (Flag.TCP_PORTS_TOTAL | Flag.TCP_PORTS) ? 1 : 0) +
    (flags & (Flag.UDP_PORTS_TOTAL | Flag.UDP_PORTS) ? 1 : 0);
  // First try: write at once. Only a document that turns out too big costs more passes: the largest perList
  // that fits (the size grows with it), between fits and tooBig.
  for (;;) {
    dropped = 0;
    doc = smallMap[names ? 3 : 2] + (run ? run(Run.HEADER) : long ? Long.HEADER : Short.HEADER) + uint(reportId) + (run ? run(Run.METRICS) : long ? Long.METRICS : Short.METRICS) + smallMap[sections];
    // declared here, once the report id is written (its 8-byte head is where the call needs the most): the
    // interpreter makes a local when its `var` runs, not when the call starts
    var next = "", // what goes before the next section: nothing before the first
      total: string,
      list: string, // the entries of a list
      listed, // how many
      count,
      seen, // established slots seen
      address: any, // of a connection: its remote address, then the address as text
      ports: number, // of a connection: remote port << 16 | local port
      slot,
      base;
    if (flags & Flag.NET_STATS) {
      doc +=
        (run ? run(Run.BYTES_IN) : long ? Long.BYTES_IN : Short.BYTES_IN) +
        uint(NS[0]) +
        (run ? run(Run.BYTES_OUT) : long ? Long.BYTES_OUT : Short.BYTES_OUT) +
        uint(NS[1]) +
        (run ? run(Run.PACKETS_IN) : long ? Long.PACKETS_IN : Short.PACKETS_IN) +
        uint(NS[2]) +
        (run ? run(Run.PACKETS_OUT) : long ? Long.PACKETS_OUT : Short.PACKETS_OUT) +
        uint(NS[3]) +
        (json ? "}" : "");
      next = json ? "," : "";
    }
    if (flags & (Flag.TCP_TOTAL | Flag.TCP_REMOTE)) {
      // {total, connections}: the established connections with a known address (a loop's body is read again at
      // every turn: the loop ends at the last established slot: slots are taken first free, and S[At.EST] counts
      // every established connection, slotted or not)
      list = "";
      listed = count = 0;
      if (flags & Flag.TCP_REMOTE)
        for (slot = At.RING, seen = 0; seen < S[At.EST] && slot < S.length; slot += Slot.SIZE)
          if (S[slot + Slot.TICKET] > 0 && ++seen && S[slot] && count++ < Limit.LIST) {
            if (listed >= perList) dropped++;
            else {
              // the entry, written here: a nested function would be made at every report
              address = S[slot];
              ports = S[slot + Slot.PORTS];
              address = (address >>> 24) + "." + ((address >> 16) & 255) + "." + ((address >> 8) & 255) + "." + (address & 255) + ":" + (ports >>> 16);
              // "a.b.c.d:port" is at most 21 bytes: its CBOR head is one byte
              list +=
                (listed++ && json ? "," : "") +
                (flags & Flag.TCP_LOCAL && ports & 65535
                  ? (run ? run(Run.CONNECTION_LOCAL) : long ? Long.CONNECTION_LOCAL : Short.CONNECTION_LOCAL) + uint(ports & 65535) + (run ? run(Run.REMOTE_ADDR) : long ? Long.REMOTE_ADDR : Short.REMOTE_ADDR)
                  : run
                    ? run(Run.CONNECTION)
                    : long
                      ? Long.CONNECTION
                      : Short.CONNECTION) +
                (json ? '"' + address + '"}' : String.fromCharCode(Major.TEXT + address.length) + address);
            }
          }
      count = flags & Flag.TCP_TOTAL && flags & Flag.TCP_REMOTE; // (counted above; now: whether the map has both keys)
      doc +=
        next +
        (run ? run(Run.TCP) : long ? Long.TCP : Short.TCP) +
        smallMap[count ? 2 : 1] +
        (flags & Flag.TCP_TOTAL ? (run ? run(Run.TOTAL) : long ? Long.TOTAL : Short.TOTAL) + uint(S[At.EST]) + (count && json ? "," : "") : "");
      if (flags & Flag.TCP_REMOTE) {
        doc += (run ? run(Run.CONNECTIONS) : long ? Long.CONNECTIONS : Short.CONNECTIONS) + (json ? "[" : uint(listed, Major.ARRAY));
        doc += list;
        if (json) doc += "]";
      }
      doc += json ? "}}" : "";
      next = json ? "," : "";
    }
    // {total, ports} of the TCP, then of the UDP port table (S[base]: the total, then the ports, 0 free); the
    // flags of the UDP table are those of the TCP one, shifted
    for (base = At.TP, count = flags; base; base = base < At.UP ? At.UP : 0, count = flags >> 2) {
      if (!(count & (Flag.TCP_PORTS_TOTAL | Flag.TCP_PORTS))) continue;
      total = count & Flag.TCP_PORTS_TOTAL ? (run ? run(Run.TOTAL) : long ? Long.TOTAL : Short.TOTAL) + uint(S[base]) : "";
      list = "";
      listed = 0;
      if (count & Flag.TCP_PORTS) {
        if (S[base])
          for (slot = base + 1; slot <= base + Ports.TABLE; slot++)
            if (S[slot]) listed < perList ? (list += (listed++ && json ? "," : "") + (run ? run(Run.PORT) : long ? Long.PORT : Short.PORT) + uint(S[slot]) + (json ? "}" : "")) : dropped++;
        // (a copy of the entries: a table holds 8 ports at most)
        list = (run ? run(Run.PORTS) : long ? Long.PORTS : Short.PORTS) + (json ? "[" + list + "]" : uint(listed, Major.ARRAY) + list);
      }
      doc +=
        next +
        (run ? run(base < At.UP ? Run.TCP_PORTS : Run.UDP_PORTS) : base < At.UP ? (long ? Long.TCP_PORTS : Short.TCP_PORTS) : long ? Long.UDP_PORTS : Short.UDP_PORTS) +
        smallMap[total && list ? 2 : 1] +
        // canonical order (the shorter key first, then bytewise), as tools/runs.ts found it for the tag style
        ((long ? TotalFirst.LONG : TotalFirst.SHORT) ? total + (total && list && json ? "," : "") + list : list + (total && list && json ? "," : "") + total) +
        (json ? "}" : "");
      next = json ? "," : "";
    }
    doc += (json ? "}" : "");
    if (names) {
      doc += run(Run.CUSTOM) + (json ? "{" : uint(names.length, Major.MAP)) + custom(names, json, perList, run, head) + (json ? "}" : "");
      dropped += names.dropped;
    }
    if (json) doc += "}";
    if (tooBig < 0 || (tooBig > Limit.LIST && doc.length <= room)) break;
    if (tooBig > Limit.LIST) (fits = -1), (tooBig = Limit.LIST);
    else if (doc.length > room) tooBig = perList;
    else fits = perList;
    if (tooBig - fits > 1) perList = (fits + tooBig) >> 1;
    else (perList = fits < 0 ? 0 : fits), (tooBig = -1);
  }
  if (fits < 0) return Err.SPACE;
  if (info) {
    info[0] = dropped;
    info[1] = S[At.OVF];
  }
  // given a size, not a buffer: the document as it is, in one block on Espruino where a block is free (a
  // 374-byte string takes 28 JsVars there, not 38 as a chain: it is held until the report is acknowledged)
  if (buf === room) return (typeof E !== "undefined" && E.toFlatString(doc)) || doc;
  // Espruino's set takes a string as its bytes; Node's would take it for an array of NaNs
  if (typeof E !== "undefined") buf.set(doc as any);
  else for (slot = 0; slot < doc.length; slot++) buf[slot] = doc.charCodeAt(slot);
  return doc.length;
}

/** Every style's runs in one text (runs.ts's Text). Its code, not its result, is what the writer reads on
 * Espruino: it must stay a function that returns the literal and nothing else (tools/build.mjs checks the
 * bundle). */
function styleRuns(): string {
  return Text.ALL;
}

/**
 * The custom metrics, off writeReport's hot path (read only for reports that have them):
 *   custom(provider) -> their names in canonical order (shorter first, then bytewise: the names are ASCII), the
 *     checked object in .values; 0 when the provider (an object, or a function returning one) threw or gave no
 *     object, or AWS would refuse a metric (badMetric: its name); null when it gave null or undefined (no
 *     custom_metrics)
 *   custom(names, json, perList, runs, head) -> the entries of the custom_metrics map, each list cut to perList
 *     entries (names.dropped: how many were dropped), with writeReport's runs and CBOR head writer
 * Parameters from `arguments`, as writeReport's.
 */
function custom(provider: any): any;
function custom(names: any, json: any, perList: number, run: (k: number) => string, head: (major: number, n: number) => string): string;
function custom(): any {
  var names = arguments[0],
    json = arguments[1],
    perList = arguments[2],
    run = arguments[3],
    head = arguments[4],
    doc = "",
    values = arguments.length > 1 && names.values, // custom(provider): none yet
    metric,
    value,
    kind,
    list,
    n,
    i,
    j;
  /** A CBOR head of any argument (0 <= n <= 2^53): one byte below 24, else writeReport's head. */
  function cborHead(major: number, n: number): string {
    return n < Cbor.ONE_BYTE ? String.fromCharCode(major + n) : head(major, n);
  }
  /** A number: an integer within 2^53 as such, any other in the shortest float that holds it exactly. */
  function number(v: number): string {
    var bits = new DataView(new ArrayBuffer(8)),
      high,
      exponent,
      mantissa,
      half = -1,
      shift,
      width = 8,
      bytes,
      k;
    if (json) return String(v);
    if (v % 1 === 0 && v <= Number2.TWO_53 && v >= -Number2.TWO_53) {
      return v < 0 ? cborHead(Major.NEGINT, -1 - v) : cborHead(Major.UINT, v);
    }
    bits.setFloat32(0, v);
    if (bits.getFloat32(0) === v) {
      // float32 bits read in 16-bit halves (a 32-bit value above 2^31 is a double on Espruino)
      high = bits.getUint16(0);
      exponent = ((high >> 7) & 255) - 127;
      mantissa = (high & 127) * 65536 + bits.getUint16(2);
      if (exponent >= -14 && exponent <= 15 && !(mantissa & 0x1fff)) half = ((exponent + 15) << 10) | (mantissa >> 13);
      else if (exponent >= -24 && exponent < -14) {
        // a float16 subnormal: the whole significand, shifted, must lose no bit
        shift = -exponent - 1;
        mantissa += 0x800000;
        if (!(mantissa & ((1 << shift) - 1))) half = mantissa >> shift;
      }
      if (half >= 0) return String.fromCharCode(Cbor.FLOAT16, (half + (high & 0x8000)) >> 8, half & 255);
      width = 4;
    } else bits.setFloat64(0, v);
    for (bytes = String.fromCharCode(width < 8 ? Cbor.FLOAT32 : Cbor.FLOAT64), k = 0; k < width; k++) bytes += String.fromCharCode(bits.getUint8(k));
    return bytes;
  }
  /** Text as UTF-8, JSON-escaped in JSON: outside ASCII, Unicode strings get \uXXXX escapes (valid JSON for
   * any code unit); byte strings (UTF-8 already, on Espruino without Unicode) are copied as bytes. */
  function text(s: string): string {
    var out = '"',
      c,
      k;
    if (!json) {
      // Unicode strings (Node): their UTF-8 bytes (the rules refuse lone surrogates, which this would throw on)
      if (!byteStrings)
        s = encodeURIComponent(s).replace(/%[0-9A-F][0-9A-F]/g, function (escape: string) {
          return String.fromCharCode(parseInt(escape.substring(1), 16));
        });
      return cborHead(Major.TEXT, s.length) + s;
    }
    for (k = 0; k < s.length; k++) {
      c = s.charCodeAt(k);
      if (c === 0x22 || c === 0x5c) out += "\\";
      out += c < 32 || (c > 126 && !byteStrings) ? "\\u" + (c + 0x10000).toString(16).substring(1) : s.charAt(k);
    }
    return out + '"';
  }

  if (!values) {
    // custom(provider): check, then sort
    try {
      values = typeof names === "function" ? names() : names;
    } catch (e) {
      return 0;
    }
    // for-in over a number, boolean or null throws on Espruino
    if (!values || typeof values !== "object") return values ? 0 : null;
    names = [];
    for (metric in values) {
      if (customMetricError(metric, values[metric])) {
        badMetric = metric;
        return 0;
      }
      names.push(metric);
    }
    names.sort(function (a: string, b: string) {
      return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
    });
    names.values = values; // a provider is called once per report: the values as checked
    return names;
  }
  names.dropped = 0;
  for (j = 0; j < names.length; j++) {
    value = values[names[j]];
    kind = "number" in value ? 0 : "number_list" in value ? 1 : "string_list" in value ? 2 : 3;
    doc += (json && j ? "," : "") + text(names[j]) + (json ? ":" : "") + run(Run.NUMBER + kind);
    if (!kind) doc += number(value.number);
    else {
      list = kind < 2 ? value.number_list : kind < 3 ? value.string_list : value.ip_list;
      n = list.length < perList ? list.length : perList;
      names.dropped += list.length - n;
      doc += json ? "[" : cborHead(Major.ARRAY, n);
      for (i = 0; i < n; i++) doc += (json && i ? "," : "") + (kind < 2 ? number(list[i]) : text(list[i]));
      if (json) doc += "]";
    }
    if (json) doc += "}]";
  }
  return doc;
}
