// Report builder: the whole Device Defender metrics document from the state in ring.ts, through writer.ts,
// into the caller's buffer. The size is known before the result is used: a write pass counts every byte
// even past the end of the buffer (typed arrays drop such writes). If the document does not fit, every list
// is cut to its first K entries, K as large as fits (binary search over measure passes, which write
// nothing); totals are never cut; then one more write pass. Nothing is allocated per report.
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
import { M } from "./ring";
import { wo, wBegin, wMap, wArr, wEnd, wKey, wStr, wNum, wAddr, wTag } from "./writer";

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

/** Tag names, long then short for ids 0-19, then ids 20-23 (the same in both styles). */
var TAGS =
  "header hed report_id rid version v metrics met tcp_connections tc established_connections ec connections cs " +
  "remote_addr rad local_port lp total t listening_tcp_ports tp listening_udp_ports up ports pts port pt " +
  "network_stats ns bytes_in bi bytes_out bo packets_in pi packets_out po custom_metrics cmet " +
  "number number_list string_list ip_list ";
/** Start offsets of the words of TAGS (and one past the end). */
var TO = new Uint16Array(45);
for (var i = 0, n = 1; i < TAGS.length; i++) if (TAGS.charCodeAt(i) === 32) TO[n++] = i + 1;

var KINDS = 20; // tag id of "number"; number_list, string_list, ip_list follow

/** Parameters of the report being written (module level: no object per report). */
var long = false,
  flags = 0,
  rid = 0,
  cm: any = null,
  ncm = 0,
  dropped = 0;

function tag(id: number): void {
  var w = id < KINDS ? 2 * id + (long ? 0 : 1) : id + KINDS;
  wTag(TAGS, TO[w], TO[w + 1] - 1);
}

/** Entries to write of a list of len, at most k (and 50); counts what k drops. */
function cap(len: number, k: number): number {
  var all = Math.min(len, 50);
  var m = Math.min(all, k);
  dropped += all - m;
  return m;
}

function listedConnections(): number {
  for (var i = 0, c = 0; i < M._n; i++) if (M._st[i] > 1 && M._ip[i]) c++;
  return c;
}

function portsLength(tab: Uint16Array): number {
  for (var i = 0, c = 0; i < tab.length; i++) if (tab[i]) c++;
  return c;
}

function ports(id: number, tab: Uint16Array, total: number, f: number, k: number): void {
  var t = flags & f,
    l = flags & (f << 1);
  if (!t && !l) return;
  tag(id);
  wMap(t && l ? 2 : 1);
  // canonical key order: "t" < "pts" (short) but "ports" < "total" (long)
  if (t && !long) tag(9), wNum(total);
  if (l) {
    tag(12);
    var m = cap(portsLength(tab), k);
    wArr(m);
    for (var i = 0; m > 0; i++) {
      if (tab[i]) {
        wMap(1);
        tag(13);
        wNum(tab[i]);
        wEnd(true);
        m--;
      }
    }
    wEnd(false);
  }
  if (t && long) tag(9), wNum(total);
  wEnd(true);
}

/** Kind of a custom metric value (0 number, 1 number_list, 2 string_list, 3 ip_list), or -1. */
function kind(v: any): number {
  if (!v || typeof v !== "object") return -1;
  return "number" in v ? 0 : "number_list" in v ? 1 : "string_list" in v ? 2 : "ip_list" in v ? 3 : -1;
}

/** The value of a custom metric of kind k. */
function value(v: any, k: number): any {
  return k === 0 ? v.number : k === 1 ? v.number_list : k === 2 ? v.string_list : v.ip_list;
}

/** Canonical CBOR order of map keys: shorter first, then bytewise. */
function before(a: string, b: string): boolean {
  return a.length !== b.length ? a.length < b.length : a < b;
}

/** The custom metric name that comes next after prev in canonical order (prev null: the first). */
function nextName(prev: string | null): string | null {
  var best: string | null = null;
  for (var name in cm) {
    if ((prev === null || before(prev, name)) && (best === null || before(name, best))) best = name;
  }
  return best;
}

/** Validates the custom metrics, counts them into ncm; false when malformed. */
function checkCustom(): boolean {
  ncm = 0;
  if (!cm) return true;
  if (typeof cm !== "object") return false;
  for (var name in cm) {
    if (name.length > 128 || name.indexOf("aws:") === 0) return false;
    var v = cm[name];
    var k = kind(v);
    if (k < 0) return false;
    var x = value(v, k);
    if (k === 0) {
      if (typeof x !== "number" || !isFinite(x)) return false;
    } else {
      if (!x || typeof x.length !== "number") return false;
      for (var i = 0; i < x.length; i++) {
        if (k === 1 ? typeof x[i] !== "number" || !isFinite(x[i]) : typeof x[i] !== "string") return false;
      }
    }
    ncm++;
  }
  return true;
}

function custom(k: number): void {
  tag(19);
  wMap(ncm);
  for (var name = nextName(null); name !== null; name = nextName(name)) {
    var v = cm[name];
    var kd = kind(v);
    wKey(name);
    wArr(1);
    wMap(1);
    tag(KINDS + kd);
    var x = value(v, kd);
    if (kd === 0) wNum(x);
    else {
      var m = cap(x.length, k);
      wArr(m);
      for (var i = 0; i < m; i++) {
        if (kd === 1) wNum(x[i]);
        else wStr(x[i]);
      }
      wEnd(false);
    }
    wEnd(true);
    wEnd(false);
  }
  wEnd(true);
}

/** One pass over the document with every list cut to k entries. */
function build(k: number): void {
  dropped = 0;
  var withCustom = flags & F_CUSTOM && cm;
  wMap(withCustom ? 3 : 2);
  tag(0);
  wMap(2);
  tag(2);
  wStr("1.0");
  tag(1);
  wNum(rid);
  wEnd(true);
  tag(3);
  var tc = flags & (F_TCP_TOTAL | F_TCP_REMOTE),
    tp = flags & (F_TCP_PORTS_TOTAL | F_TCP_PORTS),
    up = flags & (F_UDP_PORTS_TOTAL | F_UDP_PORTS),
    ns = flags & F_NET_STATS;
  wMap((tc ? 1 : 0) + (tp ? 1 : 0) + (up ? 1 : 0) + (ns ? 1 : 0));
  if (ns) {
    tag(14);
    wMap(4);
    for (var i = 0; i < 4; i++) {
      tag(15 + i);
      wNum(M._ns[i]);
    }
    wEnd(true);
  }
  if (tc) {
    tag(4);
    wMap(1);
    tag(5);
    var t = flags & F_TCP_TOTAL,
      l = flags & F_TCP_REMOTE;
    wMap(t && l ? 2 : 1);
    if (t) tag(9), wNum(M._est);
    if (l) {
      tag(6);
      var m = cap(listedConnections(), k);
      wArr(m);
      for (i = 0; m > 0; i++) {
        if (M._st[i] > 1 && M._ip[i]) {
          var lp = flags & F_TCP_LOCAL && M._lp[i];
          wMap(lp ? 2 : 1);
          if (lp) tag(8), wNum(lp);
          tag(7);
          wAddr(M._ip[i], M._rp[i]);
          wEnd(true);
          m--;
        }
      }
      wEnd(false);
    }
    wEnd(true);
    wEnd(true);
  }
  ports(10, M._tp, M._tpn, F_TCP_PORTS_TOTAL, k);
  ports(11, M._up, M._upn, F_UDP_PORTS_TOTAL, k);
  wEnd(true);
  if (withCustom) custom(k);
  wEnd(true);
}

function measure(json: boolean, k: number): number {
  wBegin(null, json);
  build(k);
  return wo;
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
  if (!buf || typeof buf.length !== "number" || !(reportId >= 0 && reportId <= 9007199254740992) || reportId % 1) {
    return ERR_INPUT;
  }
  long = !!longTags;
  flags = f;
  rid = reportId;
  cm = null;
  if (flags & F_CUSTOM) {
    try {
      cm = typeof customMetrics === "function" ? customMetrics() : customMetrics;
    } catch (e) {
      return ERR_CUSTOM;
    }
  }
  if (!checkCustom()) {
    cm = null;
    return ERR_CUSTOM;
  }
  // First try: write at once (typed arrays ignore writes past their end, and wo still counts every byte).
  // Only a document that turns out too big costs measure passes, then a second write.
  wBegin(buf, json);
  build(50);
  if (wo > buf.length) {
    if (measure(json, 0) > buf.length) {
      cm = null;
      return ERR_SPACE;
    }
    // largest k that fits: measure(k) grows with k
    var lo = 0,
      hi = 49;
    while (lo < hi) {
      var mid = (lo + hi + 1) >> 1;
      if (measure(json, mid) <= buf.length) lo = mid;
      else hi = mid - 1;
    }
    wBegin(buf, json);
    build(lo);
  }
  var len = wo;
  wBegin(null, false);
  cm = null;
  if (info) {
    info[0] = dropped;
    info[1] = M._ovf;
  }
  for (var i = 0; i < 4; i++) M._ns[i] = 0;
  M._ovf = 0;
  return len;
}
