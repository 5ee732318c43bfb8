// Report writer: the whole Device Defender metrics document from the state in ring.ts, into the caller's
// Uint8Array, as canonical CBOR (RFC 8949: definite lengths, shortest integer heads, floats in preferred form,
// keys in canonical order) or JSON (RFC 8259, UTF-8).
//
// Why our own encoder: the npm package cbor-js does not even parse on Espruino (`undefined` as a parameter name)
// and costs 320 JsVars evaluated from RAM; general-purpose encoders build objects and arrays per report.
//
// Speed on Espruino, which re-reads a function's source at every call (a call costs in proportion to the size of
// the called function) and runs native code fast: the constant parts of the document (keys with their container
// heads, the version) come encoded from runs.ts (generated from the tag table, in the style asked for), and the
// document is built as one byte string by native concatenation, then copied into the buffer at once. Nothing is
// kept between reports: the runs, the document and the nested helpers exist only while a report is written.
// Measured by `npm run bench -- report` against cbor-js on the interpreter. The custom-metric rules come from
// src/common/spec.ts, checked before anything is written.
//
// If the document does not fit the buffer, every list is cut to its first K entries, K as large as fits
// (binary search over passes); totals are never cut.
//
// Internal API (the agent calls this; index.ts exports writeReport as is):
//   writeReport(buf, json, longTags, flags, reportId, custom, info) -> length >= 0, or an error < 0
//     buf       Uint8Array the document is written into (from offset 0)
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
import { S, NS, At, Slot, setSlots } from "./ring";
import { Run, runs } from "./runs";
import { utf8Write, byteStrings } from "../common/utf8";
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

export function writeReport(
  buf: Uint8Array,
  json: any,
  longTags: any,
  flags: number,
  reportId: number,
  customMetrics: any,
  info?: { [i: number]: number },
): number;
// Parameters from `arguments` (a named parameter costs a JsVar for as long as the function exists); the nested
// helpers (made per report) take named ones: Espruino 2v29 would give them this function's `arguments`.
export function writeReport(): number {
  var buf: Uint8Array = arguments[0],
    json = arguments[1],
    flags: number = arguments[3],
    reportId: number = arguments[4],
    provider = arguments[5],
    info = arguments[6],
    run: string[],
    names: any = null, // the custom metrics' names in canonical order (.values: the checked object); null: none
    doc = "",
    perList: number = Limit.LIST, // entries per list in this pass
    fits: number = Limit.LIST, // the largest perList known to fit (-1: none)
    tooBig: number = Limit.LIST + 1, // the smallest perList known not to fit (LIST + 1: first pass; -1: last pass)
    dropped = 0,
    totalFirst,
    count,
    listed,
    slot,
    base,
    address: any,
    i;

  /** Run r (JSON: without its leading comma right after "{" or "["), then, when n >= 0, the head of major type
   * `major` with argument n (JSON: "{", "[" or the number). */
  function key(r: number, major?: number, n?: any): void {
    var piece = run[r],
      last = doc.charAt(doc.length - 1);
    doc += json && (last === "{" || last === "[") && piece.charAt(0) === "," ? piece.substring(1) : piece;
    if (n >= 0) doc += json ? (major === Major.MAP ? "{" : major === Major.ARRAY ? "[" : String(n)) : head(major!, n);
  }

  /** A CBOR head: major type and argument n (0 <= n <= 2^53) in the fewest bytes, big-endian. */
  function head(major: number, n: number): string {
    var size = n < 256 ? 1 : n < 65536 ? 2 : n < Number2.TWO_32 ? 4 : 8,
      high = Math.floor(n / Number2.TWO_32),
      bytes;
    if (n < Cbor.ONE_BYTE) return String.fromCharCode(major + n);
    bytes = String.fromCharCode(major + (size < 2 ? Cbor.ONE_BYTE : size < 4 ? Cbor.TWO_BYTES : size < 8 ? Cbor.FOUR_BYTES : Cbor.EIGHT_BYTES));
    if (size > 4) bytes += String.fromCharCode(high >>> 24, (high >> 16) & 255, (high >> 8) & 255, high & 255);
    n -= high * Number2.TWO_32;
    for (size = size > 4 ? 4 : size; size--; ) bytes += String.fromCharCode((n >>> (8 * size)) & 255);
    return bytes;
  }

  /** The custom metrics from the provider (an object, or a function returning one) as their names in canonical
   * order (shorter first, then bytewise: the names are ASCII), the checked object in .values; 0 when the
   * provider threw or gave no object, or AWS would refuse a metric (badMetric: its name); null when it gave
   * null or undefined (no custom_metrics). */
  function customNames(): any {
    // the rules' one caller in the bundle, outside the loop: the minifier then nests them here, made per report
    // (a module-scope function costs RAM for as long as the module is loaded)
    var check = customMetricError,
      custom: any,
      metric,
      sorted: any = [];
    try {
      custom = typeof provider === "function" ? provider() : provider;
    } catch (e) {
      return 0;
    }
    // for-in over a number, boolean or null throws on Espruino
    if (!custom || typeof custom !== "object") return custom ? 0 : null;
    for (metric in custom) {
      if (check(metric, custom[metric])) {
        badMetric = metric;
        return 0;
      }
      sorted.push(metric);
    }
    sorted.sort(function (a: string, b: string) {
      return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
    });
    sorted.values = custom; // a provider is called once per report: the values as checked
    return sorted;
  }

  /** The custom_metrics map; each list cut to perList entries. */
  function writeCustom(): void {
    var values = names.values,
      value,
      kind,
      list,
      n,
      j;
    /** A number: an integer within 2^53 as such, any other in the shortest float that holds it exactly. */
    function number(v: number): void {
      var bits = new DataView(new ArrayBuffer(8)),
        high,
        exponent,
        mantissa,
        half = -1,
        shift,
        width = 8,
        k;
      if (json) doc += String(v);
      else if (v % 1 === 0 && v <= Number2.TWO_53 && v >= -Number2.TWO_53) doc += v < 0 ? head(Major.NEGINT, -1 - v) : head(Major.UINT, v);
      else {
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
          if (half >= 0) {
            half += high & 0x8000;
            doc += String.fromCharCode(Cbor.FLOAT16, half >> 8, half & 255);
            return;
          }
          width = 4;
        } else bits.setFloat64(0, v);
        doc += String.fromCharCode(width < 8 ? Cbor.FLOAT32 : Cbor.FLOAT64);
        for (k = 0; k < width; k++) doc += String.fromCharCode(bits.getUint8(k));
      }
    }
    /** Text as UTF-8, JSON-escaped in JSON: outside ASCII, Unicode strings get \uXXXX escapes (valid JSON for
     * any code unit); byte strings (UTF-8 already, on Espruino without Unicode) are copied as bytes. */
    function text(s: string): void {
      var bytes: any = s,
        c,
        k;
      if (!json) {
        if (!byteStrings) {
          bytes = new Uint8Array(utf8Write(s, null, 0));
          utf8Write(s, bytes, 0);
          for (s = "", k = 0; k < bytes.length; k++) s += String.fromCharCode(bytes[k]);
        }
        doc += head(Major.TEXT, s.length) + s;
        return;
      }
      doc += '"';
      for (k = 0; k < s.length; k++) {
        c = s.charCodeAt(k);
        if (c === 0x22 || c === 0x5c) doc += "\\";
        doc += c < 32 || (c > 126 && !byteStrings) ? "\\u" + (c + 0x10000).toString(16).substring(1) : s.charAt(k);
      }
      doc += '"';
    }
    key(Run.CUSTOM, Major.MAP, names.length);
    for (j = 0; j < names.length; j++) {
      if (json && j) doc += ",";
      text(names[j]);
      if (json) doc += ":";
      value = values[names[j]];
      kind = "number" in value ? 0 : "number_list" in value ? 1 : "string_list" in value ? 2 : 3;
      key(Run.NUMBER + kind);
      if (!kind) number(value.number);
      else {
        list = kind < 2 ? value.number_list : kind < 3 ? value.string_list : value.ip_list;
        n = list.length < perList ? list.length : perList;
        dropped += list.length - n;
        key(Run.EMPTY, Major.ARRAY, n);
        for (i = 0; i < n; i++) {
          if (json && i) doc += ",";
          if (kind < 2) number(list[i]);
          else text(list[i]);
        }
        if (json) doc += "]";
      }
      if (json) doc += "}]";
    }
    if (json) doc += "}";
  }

  if (!buf || typeof buf.length !== "number" || !(reportId >= 0 && reportId <= Number2.TWO_53) || reportId % 1) return Err.INPUT;
  badMetric = "";
  if (flags & Flag.CUSTOM && provider && (names = customNames()) === 0) return Err.CUSTOM;
  setSlots(); // a report before anything was tracked: the state exists, empty
  run = runs(json, arguments[2]).split("\0");
  // canonical order: the shorter key first, then bytewise; the runs' keys carry their heads, which sort alike
  totalFirst = run[Run.TOTAL].length < run[Run.PORTS].length || (run[Run.TOTAL].length === run[Run.PORTS].length && run[Run.TOTAL] < run[Run.PORTS]);
  // First try: write at once. Only a document that turns out too big costs more passes: the largest perList
  // that fits (the size grows with it), between fits and tooBig.
  for (;;) {
    doc = "";
    dropped = 0;
    key(Run.EMPTY, Major.MAP, names ? 3 : 2);
    key(Run.HEADER, Major.UINT, reportId);
    key(
      Run.METRICS,
      Major.MAP,
      (flags & (Flag.TCP_TOTAL | Flag.TCP_REMOTE) ? 1 : 0) +
        (flags & (Flag.TCP_PORTS_TOTAL | Flag.TCP_PORTS) ? 1 : 0) +
        (flags & (Flag.UDP_PORTS_TOTAL | Flag.UDP_PORTS) ? 1 : 0) +
        (flags & Flag.NET_STATS ? 1 : 0),
    );
    if (flags & Flag.NET_STATS) {
      key(Run.BYTES_IN, Major.UINT, NS[0]);
      key(Run.BYTES_OUT, Major.UINT, NS[1]);
      key(Run.PACKETS_IN, Major.UINT, NS[2]);
      key(Run.PACKETS_OUT, Major.UINT, NS[3]);
      if (json) doc += "}";
    }
    if (flags & (Flag.TCP_TOTAL | Flag.TCP_REMOTE)) {
      // {total, connections} ("total" sorts first in both styles): the established connections with a known
      // address
      key(Run.TCP, Major.MAP, flags & Flag.TCP_TOTAL && flags & Flag.TCP_REMOTE ? 2 : 1);
      if (flags & Flag.TCP_TOTAL) key(Run.TOTAL, Major.UINT, S[At.EST]);
      if (flags & Flag.TCP_REMOTE) {
        count = 0;
        if (S[At.EST]) for (slot = At.RING; slot < S.length; slot += Slot.SIZE) if (S[slot + Slot.TICKET] > 0 && S[slot]) count++;
        count = count < Limit.LIST ? count : Limit.LIST;
        dropped += count - (listed = count < perList ? count : perList);
        key(Run.CONNECTIONS, Major.ARRAY, listed);
        for (slot = At.RING; listed; slot += Slot.SIZE) {
          if (S[slot + Slot.TICKET] > 0 && S[slot]) {
            listed--;
            address = S[slot];
            address = (address >>> 24) + "." + ((address >> 16) & 255) + "." + ((address >> 8) & 255) + "." + (address & 255) + ":" + (S[slot + Slot.PORTS] >>> 16);
            if (flags & Flag.TCP_LOCAL && S[slot + Slot.PORTS] & 65535) key(Run.CONNECTION_LOCAL, Major.UINT, S[slot + Slot.PORTS] & 65535), key(Run.REMOTE_ADDR);
            else key(Run.CONNECTION);
            // "a.b.c.d:port" is at most 21 bytes: its CBOR head is one byte
            doc += json ? '"' + address + '"}' : String.fromCharCode(Major.TEXT + address.length) + address;
          }
        }
        if (json) doc += "]";
      }
      if (json) doc += "}}";
    }
    // {total, ports} of the TCP, then of the UDP port table (S[base]: the total, then the ports, 0 free); the
    // flags of the UDP table are those of the TCP one, shifted
    for (base = At.TP, count = flags; base; base = base < At.UP ? At.UP : 0, count = flags >> 2) {
      if (!(count & (Flag.TCP_PORTS_TOTAL | Flag.TCP_PORTS))) continue;
      key(base < At.UP ? Run.TCP_PORTS : Run.UDP_PORTS, Major.MAP, count & Flag.TCP_PORTS_TOTAL && count & Flag.TCP_PORTS ? 2 : 1);
      if (count & Flag.TCP_PORTS_TOTAL && totalFirst) key(Run.TOTAL, Major.UINT, S[base]);
      if (count & Flag.TCP_PORTS) {
        listed = 0;
        if (S[base]) for (slot = base + 1; slot <= base + 8; slot++) if (S[slot]) listed++;
        dropped += listed - (listed < perList ? listed : perList);
        key(Run.PORTS, Major.ARRAY, (listed = listed < perList ? listed : perList));
        for (slot = base + 1; listed; slot++) if (S[slot]) listed--, key(Run.PORT, Major.UINT, S[slot]), json && (doc += "}");
        if (json) doc += "]";
      }
      if (count & Flag.TCP_PORTS_TOTAL && !totalFirst) key(Run.TOTAL, Major.UINT, S[base]);
      if (json) doc += "}";
    }
    if (json) doc += "}";
    if (names) writeCustom();
    if (json) doc += "}";
    if (tooBig < 0 || (tooBig > Limit.LIST && doc.length <= buf.length)) break;
    if (tooBig > Limit.LIST) (fits = -1), (tooBig = Limit.LIST);
    else if (doc.length > buf.length) tooBig = perList;
    else fits = perList;
    if (tooBig - fits > 1) perList = (fits + tooBig) >> 1;
    else (perList = fits < 0 ? 0 : fits), (tooBig = -1);
  }
  if (fits < 0) return Err.SPACE;
  // Espruino's set takes a string as its bytes; Node's would take it for an array of NaNs
  if (typeof E !== "undefined") buf.set(doc as any);
  else for (i = 0; i < doc.length; i++) buf[i] = doc.charCodeAt(i);
  if (info) {
    info[0] = dropped;
    info[1] = S[At.OVF];
  }
  return doc.length;
}
