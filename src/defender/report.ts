// Report writer: the whole Device Defender metrics document from the state in ring.ts, straight into the caller's
// Uint8Array, as canonical CBOR (RFC 8949: definite lengths, shortest integer heads, floats in preferred form,
// keys in canonical order) or JSON (RFC 8259, UTF-8).
//
// Why our own encoder: the npm package cbor-js does not even parse on Espruino (`undefined` as a parameter name)
// and costs 320 JsVars evaluated from RAM; general-purpose encoders build objects and arrays per report.
//
// Speed on Espruino, which re-reads a function's source at every call (a call costs in proportion to the size of
// the called function) and runs native code fast: the constant parts of the document (keys with their map heads,
// the version) are encoded once per format and tag style, when a report first asks for it, into one Uint8Array
// (`runs`); a report copies them with Uint8Array.set, and writes CBOR heads byte by byte, addresses and JSON
// numbers through the interpreter's native number-to-text and set. Transient values only (the nested helpers, a
// subarray per run, a string per address or JSON number): nothing is kept between reports but the two typed
// arrays and a few numbers. Measured by `npm run bench -- report` against cbor-js on the interpreter. Tag names
// come from the table in src/common/spec.ts, in the style asked for; so do the
// custom-metric rules, checked before anything is written.
//
// A pass counts every byte even past the end of the buffer (nothing is written there): after a pass `at` is the
// exact size of the document, written in full when it fits. If it does not fit, every list is cut to its first K
// entries, K as large as fits (binary search over passes); totals are never cut; then one more pass.
//
// Internal API (the agent calls this; index.ts exports writeReport as is):
//   writeReport(buf, json, longTags, flags, reportId, custom, info) -> length >= 0, or an error < 0
//     buf       Uint8Array the document is written into (from offset 0)
//     json      true: JSON; false: canonical CBOR
//     longTags  true: long tag names ("header", ...); false: short ("hed", ...)
//     flags     which metrics, any of F_* below (0xffffffff: all)
//     reportId  integer 0 .. 2^53 (epoch milliseconds fit)
//     custom    null, an object { name: { number: n } | { number_list: [n..] } | { string_list: [s..] } |
//               { ip_list: [s..] } }, or a function returning such an object (called once per report);
//               written when flags has F_CUSTOM
//     info      optional array-like, filled when the result is >= 0: info[0] = list entries dropped to fit the
//               buffer (0: complete), info[1] = connections that found no free slot since the last reset
//   Counters are read, never reset: network_stats carries NS[] as it is (the agent subtracts what an
//   acknowledged report carried).
//   Errors: ERR_SPACE (even the smallest form, every list empty, does not fit), ERR_INPUT (bad buffer or report
//   id), ERR_CUSTOM (a custom metric AWS would refuse, named in badMetric, or the provider threw, or did not
//   give an object: badMetric "").
// Every list is capped at MAX_LIST (50) entries, as AWS's own agent does; `total` keeps the true count. A custom
// list longer than that is refused (AWS refuses it).
import { S, NS, EST, OVF, TP, UP, RING } from "./ring";
import { utf8Write, byteStrings } from "../common/utf8";
import { tagNames, customMetricError, Limit } from "../common/spec";

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
}

export const enum Err {
  SPACE = -1,
  INPUT = -2,
  CUSTOM = -3,
}

// The same as exported variables (the agent's interface); the writer uses the enums, which cost no RAM: an
// export nobody imports is dropped from the bundle.
export var F_TCP_TOTAL = Flag.TCP_TOTAL,
  F_TCP_LOCAL = Flag.TCP_LOCAL,
  F_TCP_REMOTE = Flag.TCP_REMOTE,
  F_TCP_PORTS_TOTAL = Flag.TCP_PORTS_TOTAL,
  F_TCP_PORTS = Flag.TCP_PORTS,
  F_UDP_PORTS_TOTAL = Flag.UDP_PORTS_TOTAL,
  F_UDP_PORTS = Flag.UDP_PORTS,
  F_NET_STATS = Flag.NET_STATS,
  F_CUSTOM = Flag.CUSTOM;

export var ERR_SPACE = Err.SPACE,
  ERR_INPUT = Err.INPUT,
  ERR_CUSTOM = Err.CUSTOM;

/** After ERR_CUSTOM: the name of the custom metric AWS would refuse ("" when the provider threw or gave no
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

const enum Ch {
  QUOTE = 0x22,
  COMMA = 0x2c,
  COLON = 0x3a,
  BACKSLASH = 0x5c,
  OPEN_ARRAY = 0x5b,
  CLOSE_ARRAY = 0x5d,
  OPEN_MAP = 0x7b,
  CLOSE_MAP = 0x7d,
}

/** Bits of runAt[Run.STYLE]: the format and tag style `runs` holds, and facts found when it was made. */
const enum Style {
  READY = 1,
  JSON = 2,
  LONG = 4,
  /** Uint8Array.set takes a string (Espruino: its chars as bytes); Node's takes it for an array of NaNs. */
  SET_STRING = 8,
  /** In canonical order "total" comes before "connections" (established_connections) ... */
  TOTAL_BEFORE_CONNECTIONS = 16,
  /** ... and before "ports" (listening ports): both hold with short names, only the first with long ones. */
  TOTAL_BEFORE_PORTS = 32,
}

/** The constant runs of the document, in the order of runRecipes(). */
const enum Run {
  /** Nothing: before the document's first byte. */
  EMPTY,
  HEADER,
  METRICS,
  NETWORK_STATS, // then BYTES_OUT, PACKETS_IN, PACKETS_OUT: one run before each counter
  TCP = NETWORK_STATS + 4,
  TOTAL,
  CONNECTIONS,
  CONNECTION,
  CONNECTION_LOCAL,
  REMOTE_ADDR,
  TCP_PORTS,
  UDP_PORTS,
  PORTS,
  PORT,
  CUSTOM,
  NUMBER, // then NUMBER_LIST, STRING_LIST, IP_LIST
  COUNT = NUMBER + 4,
  /** Not a run: where runAt keeps the Style bits (one variable less in RAM). */
  STYLE = COUNT + 1,
}

/**
 * What each run holds, in the order of Run, one run a line: long tag names (a key, in the style asked for),
 * "{N" and "[N" (a map or array of N entries), "=text" (a text value), and ",", "}" (JSON only). A run starting
 * with "," drops it after "{" or "[". Made into bytes once per format and style, then dropped.
 */
function runRecipes(): string {
  return (
    "\n" +
    "header {2 version =1.0 , report_id\n" +
    "} , metrics\n" +
    ", network_stats {4 bytes_in\n, bytes_out\n, packets_in\n, packets_out\n" +
    ", tcp_connections {1 established_connections\n" +
    ", total\n, connections\n, {1 remote_addr\n, {2 local_port\n, remote_addr\n" +
    ", listening_tcp_ports\n, listening_udp_ports\n, ports\n, {1 port\n" +
    ", custom_metrics\n" +
    "[1 {1 number\n[1 {1 number_list\n[1 {1 string_list\n[1 {1 ip_list"
  );
}

/** The buffer being written and the offset in it; the runs' bytes and where each starts (runAt[COUNT]: the end;
 * runAt[STYLE]: Style bits). */
var out: Uint8Array,
  at = 0,
  runs: Uint8Array,
  runAt: Uint16Array;

/** A report's cold start, in one function (on Espruino each top-level function costs RAM while the module is
 * loaded): makes `runs` when the format or tag style (Style bits in `want`) is not the one they hold, and
 * returns the custom metrics from `provider` (an object, or a function returning one) as their names in
 * canonical order (shorter first, then bytewise: ASCII names), the checked object in `.custom`; null when there
 * are none; 0 when the provider threw or gave no object, or AWS would refuse a metric (badMetric: its name). */
function setup(want: number, provider: any): any {
  var custom,
    names: string[] = [],
    metric,
    table: string,
    recipes: string[],
    bytes = "",
    name = function (long: string): string {
      var i = table.indexOf("," + long + " ") + long.length + 2;
      return want & Style.LONG ? long : table.substring(i, table.indexOf(",", i));
    },
    /** canonical order of two keys: shorter first, then bytewise (ASCII names) */
    before = function (a: string, b: string): number {
      a = name(a);
      b = name(b);
      return a.length < b.length || (a.length === b.length && a < b) ? 1 : 0;
    },
    probe,
    r,
    i,
    j,
    items,
    item,
    text;
  if (provider) {
    try {
      custom = typeof provider === "function" ? provider() : provider;
    } catch (e) {
      return 0;
    }
  }
  if (custom) {
    // for-in over a number, boolean or null throws on Espruino
    if (typeof custom !== "object") return 0;
    for (metric in custom) {
      if (customMetricError(metric, custom[metric])) {
        badMetric = metric;
        return 0;
      }
      names.push(metric);
    }
    names.sort(function (a, b) {
      return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
    });
    // the values, as checked, for writeCustom (a provider is called once per report)
    (names as any).custom = custom;
  }
  if (runAt && (runAt[Run.STYLE] & (Style.READY | Style.JSON | Style.LONG)) === (want | Style.READY)) return custom ? names : null;
  table = "," + tagNames() + ",";
  recipes = runRecipes().split("\n");
  probe = new Uint8Array(1);
  runAt = new Uint16Array(Run.STYLE + 1);
  for (r = 0; r < Run.COUNT; r++) {
    runAt[r] = bytes.length;
    for (items = recipes[r].split(" "), j = 0; j < items.length; j++) {
      item = items[j];
      i = item.charAt(0);
      if (!item) continue;
      if (i === "," || i === "}") {
        if (want & Style.JSON) bytes += i;
      } else if (i === "{" || i === "[") {
        bytes += want & Style.JSON ? i : String.fromCharCode((i === "{" ? Major.MAP : Major.ARRAY) + +item.substring(1));
      } else {
        text = i === "=" ? item.substring(1) : name(item);
        bytes += want & Style.JSON ? '"' + text + '"' + (i === "=" ? "" : ":") : String.fromCharCode(Major.TEXT + text.length) + text;
      }
    }
  }
  runAt[Run.COUNT] = bytes.length;
  runs = new Uint8Array(bytes.length);
  for (i = 0; i < bytes.length; i++) runs[i] = bytes.charCodeAt(i);
  probe.set("1" as any);
  runAt[Run.STYLE] =
    want |
    Style.READY |
    (probe[0] === 0x31 ? Style.SET_STRING : 0) |
    (before("total", "connections") ? Style.TOTAL_BEFORE_CONNECTIONS : 0) |
    (before("total", "ports") ? Style.TOTAL_BEFORE_PORTS : 0);
  return custom ? names : null;
}

/** What writeCustom writes with: writeReport's helpers. */
type Key = (run: number, major?: number, n?: number) => void;
type Put = (text: string) => void;


export function writeReport(
  buf: Uint8Array,
  json: boolean,
  longTags: boolean,
  flags: number,
  reportId: number,
  customMetrics: any,
  info?: { [i: number]: number },
): number {
  // The interpreter reads a function's text at every call (to its end, even after a return) and a loop's body at
  // every turn: this text is kept short; the helpers are nested (made per report, nothing kept between reports),
  // one per format, short; the cold parts (setup, custom metrics) live in functions of their own, called from
  // inside the pass loop so that the minifier does not inline them here.
  // Every var declared up front: Espruino does not hoist var, and the minifier may reorder the branches.
  var names: any = null,
    perList: number = Limit.LIST, // entries per list in this pass
    fits: number = Limit.LIST, // the largest perList known to fit (-1: none)
    tooBig: number = Limit.LIST + 1, // the smallest perList known not to fit (Limit.LIST + 1: first pass; -1: last pass)
    dropped = 0,
    pass = 0,
    count,
    listed,
    slot,
    base,
    address: any,
    key: Key,
    style = 0, // runAt[STYLE], once setup has run
    // module variables as locals once setup has run: the interpreter finds a name by searching scope after scope
    bytes: Uint8Array,
    starts: Uint16Array,
    want = (json ? Style.JSON : 0) | (longTags ? Style.LONG : 0);
  /** CBOR: run r, then the head of major type `major` with argument n when n >= 0. */
  function cborKey(r: number, major?: any, n?: any): void {
    var from = starts[r],
      to = starts[r + 1];
    if (at + to - from <= buf.length) buf.set(bytes.subarray(from, to), at);
    at += to - from;
    if (n >= 0) {
      if (n < Cbor.ONE_BYTE) buf[at++] = major + n;
      else longHead(major, n);
    }
  }
  /** JSON: run r (its leading comma only after an entry), then "{", "[" or the integer n when n >= 0. */
  function jsonKey(r: number, major?: any, n?: any): void {
    var from = starts[r],
      to = starts[r + 1];
    if (bytes[from] === Ch.COMMA && (buf[at - 1] === Ch.OPEN_MAP || buf[at - 1] === Ch.OPEN_ARRAY)) from++;
    if (at + to - from <= buf.length) buf.set(bytes.subarray(from, to), at);
    at += to - from;
    if (n >= 0) {
      if (major === Major.MAP) buf[at++] = Ch.OPEN_MAP;
      else if (major === Major.ARRAY) buf[at++] = Ch.OPEN_ARRAY;
      else put(String(n));
    }
  }
  /** A CBOR head with argument n (24 <= n <= 2^53) in 1, 2, 4 or 8 bytes, big-endian; >>> only below 2^32
   * (Espruino's integers are 32-bit, larger ones doubles). Passed to writeCustom too: the minifier would
   * otherwise inline it into cborKey, whose text the interpreter reads at every call. */
  function longHead(major: number, n: number): void {
    var size = n < 256 ? 1 : n < 65536 ? 2 : n < 4294967296 ? 4 : 8,
      high = Math.floor(n / 4294967296);
    buf[at++] = major + (size < 2 ? Cbor.ONE_BYTE : size < 4 ? Cbor.TWO_BYTES : size < 8 ? Cbor.FOUR_BYTES : Cbor.EIGHT_BYTES);
    if (size > 4) (buf[at++] = high >>> 24), (buf[at++] = (high >> 16) & 255), (buf[at++] = (high >> 8) & 255), (buf[at++] = high & 255);
    n -= high * 4294967296;
    for (size = size > 4 ? 4 : size; size--; ) buf[at++] = (n >>> (8 * size)) & 255;
  }
  /** ASCII text (digits, an address) as bytes. */
  function put(text: string): void {
    var i;
    if (at + text.length <= buf.length) {
      if (style & Style.SET_STRING) buf.set(text as any, at);
      else for (i = 0; i < text.length; i++) buf[at + i] = text.charCodeAt(i);
    }
    at += text.length;
  }
  if (!buf || typeof buf.length !== "number" || !(reportId >= 0 && reportId <= 9007199254740992) || reportId % 1) {
    return Err.INPUT;
  }
  badMetric = "";
  out = buf; // for writeCustom
  key = json ? jsonKey : cborKey;
  // First try: write at once. Only a document that turns buf too big costs more passes: the largest perList
  // that fits (the size grows with it), between fits and tooBig.
  for (;;) {
    if (!pass++) {
      if ((names = setup(want, flags & Flag.CUSTOM && customMetrics)) === 0) return Err.CUSTOM;
      bytes = runs;
      starts = runAt;
      style = starts[Run.STYLE];
    }
    at = dropped = 0;
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
      key(Run.NETWORK_STATS, Major.UINT, NS[0]);
      key(Run.NETWORK_STATS + 1, Major.UINT, NS[1]);
      key(Run.NETWORK_STATS + 2, Major.UINT, NS[2]);
      key(Run.NETWORK_STATS + 3, Major.UINT, NS[3]);
      if (json) buf[at++] = Ch.CLOSE_MAP;
    }
    if (flags & (Flag.TCP_TOTAL | Flag.TCP_REMOTE)) {
      // {total, connections}, keys in canonical order; the established connections with a known address
      key(Run.TCP, Major.MAP, flags & Flag.TCP_TOTAL && flags & Flag.TCP_REMOTE ? 2 : 1);
      if (flags & Flag.TCP_TOTAL && style & Style.TOTAL_BEFORE_CONNECTIONS) key(Run.TOTAL, Major.UINT, S[EST]);
      if (flags & Flag.TCP_REMOTE) {
        count = 0;
        if (S[EST]) for (slot = RING; slot < S.length; slot += 3) if (S[slot + 2] > 0 && S[slot]) count++;
        count = count < Limit.LIST ? count : Limit.LIST;
        dropped += count - (listed = count < perList ? count : perList);
        key(Run.CONNECTIONS, Major.ARRAY, listed);
        for (slot = RING; listed; slot += 3) {
          if (S[slot + 2] > 0 && S[slot]) {
            listed--;
            address = S[slot];
            address = (address >>> 24) + "." + ((address >> 16) & 255) + "." + ((address >> 8) & 255) + "." + (address & 255) + ":" + (S[slot + 1] >>> 16);
            if (flags & Flag.TCP_LOCAL && S[slot + 1] & 65535) key(Run.CONNECTION_LOCAL, Major.UINT, S[slot + 1] & 65535), key(Run.REMOTE_ADDR);
            else key(Run.CONNECTION);
            // "a.b.c.d:port" is at most 21 bytes: its CBOR head is one byte
            if (json) put('"' + address + '"'), (buf[at++] = Ch.CLOSE_MAP);
            else (buf[at++] = Major.TEXT + address.length), put(address);
          }
        }
        if (json) buf[at++] = Ch.CLOSE_ARRAY;
      }
      if (flags & Flag.TCP_TOTAL && !(style & Style.TOTAL_BEFORE_CONNECTIONS)) key(Run.TOTAL, Major.UINT, S[EST]);
      if (json) (buf[at++] = Ch.CLOSE_MAP), (buf[at++] = Ch.CLOSE_MAP);
    }
    // {total, ports} of the TCP, then the UDP port table (S[base]: the total, then 8 ports, 0 free); the flags of
    // the UDP table are those of the TCP one, shifted
    for (base = TP, count = flags; base; base = base < UP ? UP : 0, count = flags >> 2) {
      if (!(count & (Flag.TCP_PORTS_TOTAL | Flag.TCP_PORTS))) continue;
      key(base < UP ? Run.TCP_PORTS : Run.UDP_PORTS, Major.MAP, count & Flag.TCP_PORTS_TOTAL && count & Flag.TCP_PORTS ? 2 : 1);
      if (count & Flag.TCP_PORTS_TOTAL && style & Style.TOTAL_BEFORE_PORTS) key(Run.TOTAL, Major.UINT, S[base]);
      if (count & Flag.TCP_PORTS) {
        listed = 0;
        if (S[base]) for (slot = base + 1; slot < base + 9; slot++) if (S[slot]) listed++;
        dropped += listed - (listed < perList ? listed : perList);
        key(Run.PORTS, Major.ARRAY, (listed = listed < perList ? listed : perList));
        for (slot = base + 1; listed; slot++) if (S[slot]) listed--, key(Run.PORT, Major.UINT, S[slot]), json && (buf[at++] = Ch.CLOSE_MAP);
        if (json) buf[at++] = Ch.CLOSE_ARRAY;
      }
      if (count & Flag.TCP_PORTS_TOTAL && !(style & Style.TOTAL_BEFORE_PORTS)) key(Run.TOTAL, Major.UINT, S[base]);
      if (json) buf[at++] = Ch.CLOSE_MAP;
    }
    if (json) buf[at++] = Ch.CLOSE_MAP;
    if (names) dropped += writeCustom(names, perList, key, put, longHead);
    if (json) buf[at++] = Ch.CLOSE_MAP;
    if (tooBig < 0 || (tooBig > Limit.LIST && at <= buf.length)) break;
    if (tooBig > Limit.LIST) (fits = -1), (tooBig = Limit.LIST);
    else if (at > buf.length) tooBig = perList;
    else fits = perList;
    if (tooBig - fits > 1) perList = (fits + tooBig) >> 1;
    else (perList = fits < 0 ? 0 : fits), (tooBig = -1);
  }
  if (fits < 0) return Err.SPACE;
  if (info) {
    info[0] = dropped;
    info[1] = S[OVF];
  }
  return at;
}

/** The custom_metrics block (names from setup: values checked already), with writeReport's key and put;
 * returns the list entries dropped to fit perList. */
function writeCustom(names: any, perList: number, key: Key, put: Put, longHead: (major: number, n: number) => void): number {
  var json = runAt[Run.STYLE] & Style.JSON,
    custom = names.custom,
    dropped = 0,
    value,
    kind,
    list,
    count,
    i,
    j;
  /** A number: an integer within 2^53 as such, any other in the shortest float that holds it exactly. */
  function number(v: number): void {
    var bits = new DataView(new ArrayBuffer(8)),
      high,
      exponent,
      mantissa,
      half = -1,
      shift,
      byte,
      major;
    if (json) put(String(v));
    else if (v % 1 === 0 && v <= 9007199254740992 && v >= -9007199254740992) {
      major = v < 0 ? Major.NEGINT : Major.UINT;
      v = v < 0 ? -1 - v : v;
      if (v < Cbor.ONE_BYTE) out[at++] = major + v;
      else longHead(major, v);
    } else {
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
          out[at++] = Cbor.FLOAT16;
          out[at++] = half >> 8;
          out[at++] = half & 255;
        } else {
          out[at++] = Cbor.FLOAT32;
          for (byte = 0; byte < 4; byte++) out[at++] = bits.getUint8(byte);
        }
      } else {
        bits.setFloat64(0, v);
        out[at++] = Cbor.FLOAT64;
        for (byte = 0; byte < 8; byte++) out[at++] = bits.getUint8(byte);
      }
    }
  }
  /** Text as UTF-8, JSON-escaped in JSON: outside ASCII, Unicode strings get \uXXXX escapes (valid JSON for
   * any code unit); byte strings (UTF-8 already, on Espruino without Unicode) are copied as bytes. */
  function text(s: string): void {
    var c, shift, k;
    if (!json) {
      key(Run.EMPTY, Major.TEXT, utf8Write(s, null, 0));
      at = utf8Write(s, out, at);
      return;
    }
    out[at++] = Ch.QUOTE;
    for (k = 0; k < s.length; k++) {
      c = s.charCodeAt(k);
      if (c === Ch.QUOTE || c === Ch.BACKSLASH) out[at++] = Ch.BACKSLASH;
      if (c < 32 || (c > 126 && !byteStrings)) {
        put("\\u");
        for (shift = 12; shift >= 0; shift -= 4) put(((c >> shift) & 15).toString(16));
      } else out[at++] = c;
    }
    out[at++] = Ch.QUOTE;
  }
  key(Run.CUSTOM, Major.MAP, names.length);
  for (i = 0; i < names.length; i++) {
    if (json && i) out[at++] = Ch.COMMA;
    text(names[i]);
    if (json) out[at++] = Ch.COLON;
    value = custom[names[i]];
    kind = "number" in value ? 0 : "number_list" in value ? 1 : "string_list" in value ? 2 : 3;
    key(Run.NUMBER + kind);
    if (!kind) number(value.number);
    else {
      list = kind < 2 ? value.number_list : kind < 3 ? value.string_list : value.ip_list;
      count = Math.min(list.length, perList);
      dropped += list.length - count;
      key(Run.EMPTY, Major.ARRAY, count);
      for (j = 0; j < count; j++) {
        if (json && j) out[at++] = Ch.COMMA;
        if (kind < 2) number(list[j]);
        else text(list[j]);
      }
      if (json) out[at++] = Ch.CLOSE_ARRAY;
    }
    if (json) (out[at++] = Ch.CLOSE_MAP), (out[at++] = Ch.CLOSE_ARRAY);
  }
  if (json) out[at++] = Ch.CLOSE_MAP;
  return dropped;
}
