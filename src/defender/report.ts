// Report builder: the whole Device Defender metrics document from the state in ring.ts, through writer.ts,
// into the caller's buffer. A pass counts every byte even past the end of the buffer (typed arrays drop such
// writes). If the document does not fit, every list is cut to its first K entries, K as large as fits (binary
// search over passes); totals are never cut; then one more pass. Nothing is allocated per report.
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
import { M, S, TP, UP, NS } from "./ring";
import { wo, wBegin, wOpen, wEnd, wStr, wNum, wAddr, wTag } from "./writer";

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

/** Parameters of the report being written (module level: no object per report): short tags (1) or long
 * (0), flags, report id, custom metrics, list entries dropped, custom metrics malformed. */
var short = 0,
  flags = 0,
  rid = 0,
  cm: any = null,
  dropped = 0,
  bad = false;

/** Tag id (0-19: a long/short pair, 20-23: a custom metric kind). */
function tag(id: number): void {
  var w = id < 20 ? 2 * id + short : id + 20;
  wTag(TAGS, TO[w], TO[w + 1] - 1);
}

/** Entries to write of a list of len, at most k (and 50); counts what k drops. */
function cap(len: number, k: number): number {
  var all = Math.min(len, 50);
  dropped += all - Math.min(all, k);
  return Math.min(all, k);
}

/** Whether the entry i of a list is there: a port table's (tab) or the ring's (established, known address). */
function listed(tab: Uint16Array | null, i: number): number {
  return tab ? tab[i] : S[i + 3] > 0 ? S[i] : 0;
}

/** A { total, list } map: established connections (tab null, flags F_TCP_TOTAL << s) or a port table's. */
function group(tab: Uint16Array | null, s: number, k: number): void {
  var t = flags & (1 << s),
    l = flags & (tab ? 2 << s : F_TCP_REMOTE),
    late = tab && !short, // canonical order: "t" < "pts" (short) but "ports" < "total" (long)
    step = tab ? 1 : 4,
    end = tab ? 9 : S.length;
  wOpen(true, t && l ? 2 : 1);
  if (t && !late) tag(9), wNum(tab ? tab[0] : M._est);
  if (l) {
    tag(tab ? 12 : 6);
    for (var i = tab ? 1 : 0, m = 0; i < end; i += step) if (listed(tab, i)) m++;
    wOpen(false, (m = cap(m, k)));
    for (i = tab ? 1 : 0; m; i += step) {
      if (listed(tab, i)) {
        var lp = !tab && flags & F_TCP_LOCAL && S[i + 2];
        wOpen(true, lp ? 2 : 1);
        if (lp) tag(8), wNum(lp);
        if (tab) tag(13), wNum(tab[i]);
        else tag(7), wAddr(S[i], S[i + 1]);
        wEnd(true);
        m--;
      }
    }
    wEnd(false);
  }
  if (t && late) tag(9), wNum(tab![0]);
  wEnd(true);
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

/** Custom metrics, checked as they are written (sets bad when malformed: the pass is then useless). */
function custom(k: number): void {
  var name: any,
    c = 0;
  if (typeof cm !== "object") bad = true;
  tag(19);
  for (name in cm) c++;
  wOpen(true, c);
  for (name = nextName(null); name !== null; name = nextName(name)) {
    var v = cm[name],
      kd = !v || typeof v !== "object" ? -1 : "number" in v ? 0 : "number_list" in v ? 1 : "string_list" in v ? 2 : "ip_list" in v ? 3 : -1,
      x = kd > 0 && (kd < 2 ? v.number_list : kd < 3 ? v.string_list : v.ip_list);
    if (kd < 0 || name.length > 128 || name.indexOf("aws:") === 0 || (kd && !(x && typeof x.length === "number"))) {
      bad = true;
      continue;
    }
    wStr(name, true);
    wOpen(false, 1);
    wOpen(true, 1);
    tag(20 + kd);
    // a number: one value, not in a list
    var m = kd ? cap(x.length, k) : 1;
    if (kd) wOpen(false, m);
    for (var i = 0; i < (kd ? x.length : 1); i++) {
      var e = kd ? x[i] : v.number;
      if (kd > 1 ? typeof e !== "string" : typeof e !== "number" || !isFinite(e)) bad = true;
      else if (i < m) kd > 1 ? wStr(e) : wNum(e);
    }
    if (kd) wEnd(false);
    wEnd(true);
    wEnd(false);
  }
  wEnd(true);
}

/** One pass over the document into buf with every list cut to k entries. */
function build(buf: Uint8Array, json: boolean, k: number): number {
  dropped = 0;
  wBegin(buf, json);
  var withCustom = flags & F_CUSTOM && cm,
    tc = flags & (F_TCP_TOTAL | F_TCP_REMOTE),
    ns = flags & F_NET_STATS;
  wOpen(true, withCustom ? 3 : 2);
  tag(0);
  wOpen(true, 2);
  tag(2);
  wStr("1.0");
  tag(1);
  wNum(rid);
  wEnd(true);
  tag(3);
  wOpen(true, (tc ? 1 : 0) + (flags & (F_TCP_PORTS_TOTAL | F_TCP_PORTS) ? 1 : 0) + (flags & (F_UDP_PORTS_TOTAL | F_UDP_PORTS) ? 1 : 0) + (ns ? 1 : 0));
  if (ns) {
    tag(14);
    wOpen(true, 4);
    for (var i = 0; i < 4; i++) tag(15 + i), wNum(NS[i]);
    wEnd(true);
  }
  if (tc) {
    tag(4);
    wOpen(true, 1);
    tag(5);
    group(null, 0, k);
    wEnd(true);
  }
  if (flags & (F_TCP_PORTS_TOTAL | F_TCP_PORTS)) tag(10), group(TP, 4, k);
  if (flags & (F_UDP_PORTS_TOTAL | F_UDP_PORTS)) tag(11), group(UP, 6, k);
  wEnd(true);
  if (withCustom) custom(k);
  wEnd(true);
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
  short = longTags ? 0 : 1;
  flags = f;
  rid = reportId;
  bad = false;
  try {
    cm = flags & F_CUSTOM && (typeof customMetrics === "function" ? customMetrics() : customMetrics);
  } catch (e) {
    return ERR_CUSTOM;
  }
  var len = buf.length,
    lo = 50;
  // First try: write at once. Only a document that turns out too big costs more passes: the largest k that
  // fits (the size grows with k), between lo (fits; -1: nothing fits) and hi (too big).
  if (build(buf, json, lo) > len && !bad) {
    lo = -1;
    for (var hi = 50; hi - lo > 1; ) {
      var k = (lo + hi) >> 1;
      if (build(buf, json, k) > len) hi = k;
      else lo = k;
    }
    build(buf, json, lo < 0 ? 0 : lo);
  }
  cm = null;
  if (bad) return ERR_CUSTOM;
  if (lo < 0) return ERR_SPACE;
  if (info) {
    info[0] = dropped;
    info[1] = M._ovf;
  }
  for (var i = 0; i < 4; i++) NS[i] = 0;
  M._ovf = 0;
  return wo;
}
