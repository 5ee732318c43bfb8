// Report builder and writer: the whole Device Defender metrics document from the state in ring.ts, straight
// into the caller's Uint8Array, as canonical CBOR or JSON (RFC 8259, UTF-8). A pass counts every byte even
// past the end of the buffer (typed arrays drop such writes): after a pass wo is the exact size of the document,
// written in full when it fits. If the document does not fit, every list is cut to its first K entries, K as
// large as fits (binary search over passes); totals are never cut; then one more pass.
//
// Why our own encoder: the npm package cbor-js does not even parse on Espruino (`undefined` as a parameter
// name) and costs 320 JsVars when evaluated from RAM; general-purpose encoders (cbor-x, cborg, ...) build
// objects and arrays per report. Nothing here is allocated per report: no objects, no closures, no strings
// (one exception: a non-integer custom metric number in JSON goes through String(n)).
// Two functions in all, since on Espruino every function costs RAM while the module is loaded, and every call
// costs time in proportion to the size of the function's source (the interpreter reads it again): writeReport
// (the passes, in a loop) and w (one item), kept short; tag names and ends of maps and arrays are not items.
//
// Internal API (the agent calls this; index.ts exports it as is):
//   writeReport(buf, json, longTags, flags, reportId, custom, info) -> length >= 0, or an error < 0
//     buf       Uint8Array the document is written into (from offset 0)
//     json      true: JSON (RFC 8259, UTF-8); false: canonical CBOR
//     longTags  true: long tag names ("header", ...); false: short ("hed", ...)
//     flags     which metrics, any of F_* below (0xffffffff: all)
//     reportId  integer 0 .. 2^53 (epoch milliseconds fit)
//     custom    null, an object { name: { number: n } | { number_list: [n..] } | { string_list: [s..] } |
//               { ip_list: [s..] } }, or a function returning such an object (called once per report);
//               written when flags has F_CUSTOM
//     info      optional array-like, filled when the result is >= 0: info[0] = list entries dropped to fit
//               the buffer (0: complete), info[1] = connections that found no free slot since the last report
//   On success the network counters and the slot-overflow count restart from zero (network_stats are
//   deltas: counts since the previous report). On error nothing is reset.
//   Errors: ERR_SPACE (even the smallest form, every list empty, does not fit), ERR_INPUT (bad buffer or
//   report id), ERR_CUSTOM (custom metrics malformed, or the provider threw).
// Every list is capped at 50 entries (as AWS's own agent does); `total` keeps the true count.
//
// w(op, v, x) writes one item at wo in wb; the first six start with a key, tag id v (T_* below), in the report's
// tag style:
//   TAG    the key, then the number x if there is one
//   WORD   the text with tag id v (T_V10: "1.0"): a value, not a key
//   KMAP, KARR   the key, then a map or array of x entries
//   ADDR   the key "rad" and "a.b.c.d:port" from the ring's slot at S[v], digit by digit; with x, in a map of its
//          own: {"rad": ...} (one call per listed connection)
//   PORT   {"pt": v} (one call per listed port)
//   NUM    the number v: integers |v| <= 2^53 exactly (shortest CBOR head, split by division, never bit
//          operators: Espruino integers are 32-bit), other numbers as CBOR float64 (0xfb)
//   STR, KEY   the text v as a value or as a map key; UTF-8 via src/common/utf8.ts, JSON escaped
//   MAP, ARR   a map or array of v entries (CBOR needs v: definite lengths; the caller closes it in JSON)
// JSON commas: an item gets one unless the byte before it opens a map or array or ends a key ("{", "[", ":").
// Tag names live in one Uint8Array T of the current style only: T[0..7] scratch for a float64 (F views it),
// T[8] the style (1 short, 2 long), T[9..34] where each of the 25 words starts after T[35], then the words.
// It is made at the first report, and again only when a report asks for the other style: so no long string
// stays in RAM, and nothing is allocated while the style stays.
import { S, NS, EST, OVF, TP, UP, RING } from "./ring";
import { utf8Write, byteStrings } from "../common/utf8";

export var F_TCP_TOTAL = 0x1, // FreeRTOS: established connections total
  F_TCP_LOCAL = 0x2, // local port of each connection
  F_TCP_REMOTE = 0x4, // FreeRTOS: established connections remote address (the connections list)
  F_TCP_PORTS_TOTAL = 0x10,
  F_TCP_PORTS = 0x20,
  F_UDP_PORTS_TOTAL = 0x40,
  F_UDP_PORTS = 0x80,
  F_NET_STATS = 0x100,
  F_CUSTOM = 0x200;

export var ERR_SPACE = -1,
  ERR_INPUT = -2,
  ERR_CUSTOM = -3;

/** w's operations: those below NUM start with a key. */
var TAG = 0,
  WORD = 1,
  KMAP = 2,
  KARR = 3,
  ADDR = 4,
  PORT = 5,
  NUM = 6,
  STR = 7,
  KEY = 8,
  MAP = 9,
  ARR = 10;

/** Tag ids: the order of the words of both tag lists in writeReport. */
var T_HED = 0,
  T_RID = 1,
  T_V = 2,
  T_MET = 3,
  T_TC = 4,
  T_EC = 5,
  T_CS = 6,
  T_RAD = 7,
  T_LP = 8,
  T_T = 9,
  T_TP = 10, // then T_UP
  T_PTS = 12,
  T_PT = 13,
  T_NS = 14,
  T_BI = 15, // then bo, pi, po
  T_CMET = 19,
  T_NUMBER = 20, // then number_list, string_list, ip_list
  T_V10 = 24;

/** Buffer, offset, JSON (1) or CBOR (0); tag table and its float64 view. */
var wb: Uint8Array,
  wo = 0,
  wj = 0,
  T: Uint8Array,
  F: Float64Array;

function w(op: number, v?: any, x?: any): void {
  // every var declared up front: Espruino does not hoist var, and the minifier may reorder the branches
  var n = -1, // a CBOR head to write: major type k, argument n
    k = 0,
    c,
    i,
    e;
  if (wj) {
    c = wo ? wb[wo - 1] : 123; // wb[-1] throws on Espruino
    if (c !== 123 && c !== 91 && c !== 58) wb[wo++] = 44;
  }
  if (op === PORT || (op === ADDR && x)) {
    wb[wo++] = wj ? 123 : 0xa1; // a map of one entry
    if (op === PORT) {
      x = v;
      v = T_PT;
    }
  }
  if (op < NUM) {
    // the key: ASCII, shorter than 24 bytes
    i = T[(op === ADDR ? T_RAD : v) + 9] + 35;
    e = T[(op === ADDR ? T_RAD : v) + 10] + 35;
    wb[wo++] = wj ? 34 : 96 + e - i;
    while (i < e) wb[wo++] = T[i++];
    if (wj) wb[wo++] = 34;
    if (op === WORD) return;
    if (wj) wb[wo++] = 58;
    if (op === ADDR) {
      x = S[v + 1] >>> 16;
      v = S[v];
    } else if (x === void 0) return;
    else {
      // what follows the key
      op = op === KMAP ? MAP : op === KARR ? ARR : NUM;
      v = x;
    }
  }
  if (op === NUM) {
    if (!(v % 1 === 0 && v <= 9007199254740992 && v >= -9007199254740992)) {
      if (wj) for (x = String(v), i = 0; i < x.length; i++) wb[wo++] = x.charCodeAt(i);
      else {
        wb[wo++] = 0xfb;
        // big-endian; typed arrays are little-endian on every target (x86, ARM, Xtensa)
        F[0] = v;
        for (i = 8; i--; ) wb[wo++] = T[i];
      }
      return;
    }
    k = v < 0 ? 1 : 0;
    if (!wj) n = v < 0 ? -1 - v : v;
  } else if (op === STR || op === KEY) {
    k = 3;
    if (!wj) n = utf8Write(v, null, 0);
    else {
      // outside ASCII, Unicode strings get \uXXXX escapes (valid JSON for any code unit); byte strings (UTF-8
      // already, on Espruino without Unicode) are copied as bytes
      wb[wo++] = 34;
      for (i = 0; i < v.length; i++) {
        c = v.charCodeAt(i);
        if (c === 34 || c === 92) wb[wo++] = 92;
        if (c < 32 || (c > 126 && !byteStrings)) {
          wb[wo++] = 92;
          wb[wo++] = 117;
          for (x = 12; x >= 0; x -= 4) {
            e = (c >> x) & 15;
            wb[wo++] = e + (e < 10 ? 48 : 87);
          }
        } else wb[wo++] = c;
      }
      wb[wo++] = 34;
      if (op === KEY) wb[wo++] = 58;
      return;
    }
  } else if (op > KEY) {
    if (wj) {
      wb[wo++] = op === MAP ? 123 : 91;
      return;
    }
    k = op === MAP ? 5 : 4;
    n = v;
  }
  if (n >= 0) {
    // the CBOR head (0 <= n < 2^53), shortest form, big-endian by division
    if (n < 24) wb[wo++] = k * 32 + n;
    else {
      i = n < 256 ? 0 : n < 65536 ? 1 : n < 4294967296 ? 2 : 3;
      wb[wo++] = k * 32 + 24 + i;
      i = 1 << i;
      wo += i;
      for (e = wo; i--; n = (n - (n % 256)) / 256) wb[--e] = n % 256;
    }
    if (k === 3) wo = utf8Write(v, wb, wo);
    return;
  }
  // decimal digits: the five parts of an address (quoted; in CBOR after a one-byte head, set once the length
  // is known), or a JSON integer
  e = wo;
  if (op === ADDR || k) wb[wo++] = op === ADDR ? 34 : 45;
  for (k = op === ADDR ? 0 : 4; k < 5; k++) {
    n = k < 4 ? (v >> (24 - 8 * k)) & 255 : op === ADDR ? x : v < 0 ? -v : v;
    for (i = 10; i <= n; i *= 10) wo++;
    i = ++wo;
    do {
      c = n % 10;
      wb[--i] = 48 + c;
      n = (n - c) / 10;
    } while (n > 0);
    if (op === ADDR && k < 4) wb[wo++] = k < 3 ? 46 : 58;
  }
  if (op === ADDR) {
    if (wj) wb[wo++] = 34;
    else wb[e] = 95 + wo - e;
  }
}

export function writeReport(
  buf: Uint8Array,
  json: boolean,
  longTags: boolean,
  f: number,
  reportId: number,
  customMetrics: any,
  info?: { [i: number]: number },
): number {
  // every var declared up front: Espruino does not hoist var, and the minifier may reorder the branches
  var cm: any,
    k = 50, // entries per list in this pass
    lo = 50, // the largest k known to fit (-1: none)
    hi = 51, // the smallest k known not to fit (51: first pass; -1: last pass)
    bad,
    dropped,
    g, // 0 established connections, 1 listening TCP ports, 2 listening UDP ports
    o, // their offset in S
    t, // their total wanted
    l, // their list wanted
    i,
    m,
    lp,
    name: any,
    prev: any,
    v: any,
    kd,
    x: any;
  if (!buf || typeof buf.length !== "number" || !(reportId >= 0 && reportId <= 9007199254740992) || reportId % 1) {
    return ERR_INPUT;
  }
  try {
    cm = f & F_CUSTOM && (typeof customMetrics === "function" ? customMetrics() : customMetrics);
  } catch (e) {
    return ERR_CUSTOM;
  }
  if (!T || T[8] !== (longTags ? 2 : 1)) {
    // 25 words, at most 255 bytes in all (the offsets are bytes)
    x =
      (longTags
        ? "header report_id version metrics tcp_connections established_connections connections remote_addr " +
          "local_port total listening_tcp_ports listening_udp_ports ports port network_stats bytes_in bytes_out " +
          "packets_in packets_out custom_metrics"
        : "hed rid v met tc ec cs rad lp t tp up pts pt ns bi bo pi po cmet") + " number number_list string_list ip_list 1.0 ";
    T = new Uint8Array(x.length + 10);
    F = new Float64Array(T.buffer, 0, 1);
    T[8] = longTags ? 2 : 1;
    for (i = 0, m = 9, k = 0; i < x.length; i++) {
      if (x.charCodeAt(i) === 32) T[++m] = k;
      else T[35 + k++] = x.charCodeAt(i);
    }
    k = 50;
  }
  wb = buf;
  wj = json ? 1 : 0;
  // First try: write at once. Only a document that turns out too big costs more passes: the largest k that
  // fits (the size grows with k), between lo and hi.
  for (;;) {
    bad = dropped = wo = 0;
    w(MAP, cm ? 3 : 2);
    w(KMAP, T_HED, 2);
    w(TAG, T_V);
    w(WORD, T_V10);
    w(TAG, T_RID, reportId);
    if (wj) wb[wo++] = 125;
    w(
      KMAP,
      T_MET,
      (f & (F_TCP_TOTAL | F_TCP_REMOTE) ? 1 : 0) +
        (f & (F_TCP_PORTS_TOTAL | F_TCP_PORTS) ? 1 : 0) +
        (f & (F_UDP_PORTS_TOTAL | F_UDP_PORTS) ? 1 : 0) +
        (f & F_NET_STATS ? 1 : 0),
    );
    if (f & F_NET_STATS) {
      w(KMAP, T_NS, 4);
      for (i = 0; i < 4; i++) w(TAG, T_BI + i, NS[i]);
      if (wj) wb[wo++] = 125;
    }
    // { total, list } maps; canonical key order: "t" before "cs" and "pts" (short), "total" before
    // "connections" but after "ports" (long)
    for (g = 0; g < 3; g++) {
      o = g ? (g < 2 ? TP : UP) : RING;
      t = f & (g ? (g < 2 ? F_TCP_PORTS_TOTAL : F_UDP_PORTS_TOTAL) : F_TCP_TOTAL);
      l = f & (g ? (g < 2 ? F_TCP_PORTS : F_UDP_PORTS) : F_TCP_REMOTE);
      if (t || l) {
        if (!g) w(KMAP, T_TC, 1);
        w(KMAP, g ? T_TP + g - 1 : T_EC, t && l ? 2 : 1);
        if (t && !(g && longTags)) w(TAG, T_T, g ? S[o] : S[EST]);
        if (l) {
          // entries: a port table's ports, the ring's established connections with a known address
          for (i = g ? o + 1 : o, m = 0; i < (g ? o + 9 : S.length); i += g ? 1 : 3) if (g ? S[i] : S[i + 2] > 0 && S[i]) m++;
          m = Math.min(m, 50);
          dropped += m - Math.min(m, k);
          w(KARR, g ? T_PTS : T_CS, (m = Math.min(m, k)));
          for (i = g ? o + 1 : o; m; i += g ? 1 : 3) {
            if (g ? S[i] : S[i + 2] > 0 && S[i]) {
              lp = !g && f & F_TCP_LOCAL && S[i + 1] & 65535;
              if (lp) w(MAP, 2), w(TAG, T_LP, lp), w(ADDR, i);
              else w(g ? PORT : ADDR, g ? S[i] : i, 1);
              if (wj) wb[wo++] = 125;
              m--;
            }
          }
          if (wj) wb[wo++] = 93;
        }
        if (t && g && longTags) w(TAG, T_T, S[o]);
        if (wj) wb[wo++] = 125;
        if (wj && !g) wb[wo++] = 125;
      }
    }
    if (wj) wb[wo++] = 125;
    if (cm) {
      // custom metrics, checked as they are written (bad when malformed: the pass is then useless), in
      // canonical order (shorter name first, then bytewise) found by scanning, without sorting into an array
      if (typeof cm !== "object") {
        // for-in over a number, boolean or null throws on Espruino (over undefined it does not): nothing to
        // enumerate, the report fails anyway
        bad = 1;
        cm = void 0;
      }
      m = 0;
      for (name in cm) m++;
      w(KMAP, T_CMET, m);
      for (prev = null; ; prev = name) {
        name = null;
        for (x in cm) {
          if (
            (prev === null || (prev.length !== x.length ? prev.length < x.length : prev < x)) &&
            (name === null || (x.length !== name.length ? x.length < name.length : x < name))
          ) {
            name = x;
          }
        }
        if (name === null) break;
        v = cm[name];
        // kind: 0 number, 1 number_list, 2 string_list, 3 ip_list
        kd = !v || typeof v !== "object" ? -1 : "number" in v ? 0 : "number_list" in v ? 1 : "string_list" in v ? 2 : "ip_list" in v ? 3 : -1;
        x = kd > 0 && (kd < 2 ? v.number_list : kd < 3 ? v.string_list : v.ip_list);
        if (kd < 0 || name.length > 128 || name.indexOf("aws:") === 0 || (kd && !(x && typeof x.length === "number"))) {
          bad = 1;
          continue;
        }
        w(KEY, name);
        w(ARR, 1);
        w(MAP, 1);
        // a number: one value, not in a list
        m = kd ? Math.min(x.length, 50) : 1;
        if (kd) dropped += m - Math.min(m, k);
        if (kd) w(KARR, T_NUMBER + kd, (m = Math.min(m, k)));
        else w(TAG, T_NUMBER);
        for (i = 0; i < (kd ? x.length : 1); i++) {
          lp = kd ? x[i] : v.number;
          if (kd > 1 ? typeof lp !== "string" : typeof lp !== "number" || !isFinite(lp)) bad = 1;
          else if (i < m) w(kd > 1 ? STR : NUM, lp);
        }
        if (wj) {
          if (kd) wb[wo++] = 93;
          wb[wo++] = 125;
          wb[wo++] = 93;
        }
      }
      if (wj) wb[wo++] = 125;
    }
    if (wj) wb[wo++] = 125;
    if (hi < 0 || (hi > 50 && (wo <= buf.length || bad))) break;
    if (hi > 50) (lo = -1), (hi = 50);
    else if (wo > buf.length) hi = k;
    else lo = k;
    if (hi - lo > 1) k = (lo + hi) >> 1;
    else (k = lo < 0 ? 0 : lo), (hi = -1);
  }
  if (bad) return ERR_CUSTOM;
  if (lo < 0) return ERR_SPACE;
  if (info) {
    info[0] = dropped;
    info[1] = S[OVF];
  }
  for (i = 0; i < 4; i++) NS[i] = 0;
  S[OVF] = 0;
  return wo;
}
