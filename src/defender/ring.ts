// Metrics state: the connection ring, the listening port tables and the network counters, and the per-socket
// hooks that feed them (track.ts wires sockets to them; report.ts reads the state). Preallocated typed arrays,
// no object and no closure per connection: taking and releasing a slot allocates nothing.
//
// Internal API:
//   S                      Int32Array: [EST] established connections, exact, slot or not; [OVF] connections
//                          that found no free slot since the last report; [SEQ] last ticket issued (below 2^31:
//                          plain integers on Espruino too); [TP..TP+8] and [UP..UP+8] listening TCP and UDP
//                          ports: the exact total, then 8 ports (0 free); from RING on, 4 per slot: remote IPv4
//                          address (a.b.c.d = a << 24 | b << 16 | ..., 0 unknown), remote port, local port,
//                          ticket (0 free, > 0 established, < 0 connecting)
//   NS                     Float64Array: bytes in, bytes out, packets in, packets out since the last report
//                          (exact up to 2^53); NS[4] is the report writer's float64 scratch
//   setSlots(n)            1..255 slots; reallocates S, keeping live connections (compacted; any that no longer
//                          fit stay counted in the total, unlisted). The agent calls it at start.
//   hook(s, ip, port, lp, st)  tracks socket s, a connection to ip:port from local port lp in state st
//                          (1 connecting, 2 established): its ticket in s._d (> 0 its slot's, -1 connecting
//                          without a slot, -2 established without a slot), its write counted (tWrite, the
//                          platform's own kept in s._w: on Espruino a socket's native methods are not on what
//                          Object.getPrototypeOf returns), its slot established on "connect" and released
//                          exactly once on the first of "end", "close" or "error"
//   tWrite                 a tracked socket's write and a tracked dgram socket's send: one packet out
//   count(d, out)          one packet of data d in (out not 1) or out (out 1); also the "data" and "message"
//                          listener itself (their other arguments are never 1)
//   listening(o, port, on) the port of table S[o..o+8] (o: TP or UP) starts (on 1) or stops (0) listening
//   parseIp(s)             "a.b.c.d" (or "::ffff:a.b.c.d") as in S, 0 when it is not IPv4
import { utf8Write } from "../common/utf8";

export var EST = 0,
  OVF = 1,
  SEQ = 2,
  TP = 3,
  UP = 12,
  RING = 21;

export var S = new Int32Array(RING + 32),
  NS = new Float64Array(5);

export function setSlots(n: number): void {
  var s, i, j, k;
  n = RING + Math.max(1, Math.min(255, n | 0)) * 4;
  if (n === S.length) return;
  s = new Int32Array(n);
  for (i = 0; i < RING; i++) s[i] = S[i];
  for (j = i; i < S.length; i += 4) if (S[i + 3] && j < n) for (k = 0; k < 4; ) s[j++] = S[i + k++];
  S = s;
}

export function hook(s: any, ip: number, port: any, lp: number, st: number): void {
  var i,
    t = -st;
  if (st > 1) S[EST]++;
  for (i = RING; i < S.length; i += 4) {
    if (!S[i + 3]) {
      S[i] = ip;
      S[i + 1] = +port || 0;
      S[i + 2] = lp;
      t = S[SEQ] = S[SEQ] > 0x7ffffffd ? 1 : S[SEQ] + 1;
      S[i + 3] = st > 1 ? t : -t;
      break;
    }
  }
  if (t < 0) S[OVF]++;
  s._d = t;
  s._w = s.write;
  s.write = tWrite;
  s.on("connect", onConnect);
  s.on("data", count);
  s.on("end", onGone);
  s.on("close", onGone);
  s.on("error", onGone);
}

export function tWrite(this: any, d: any): any {
  count(d, 1);
  return this._w.apply(this, arguments);
}

/** "connect": the connection is established (its slot's ticket turns positive). */
function onConnect(this: any): void {
  var t = this._d,
    i = RING;
  if (t) {
    while (t > 0 && i < S.length && S[i + 3] !== t && S[i + 3] !== -t) i += 4;
    if (t > 0 && i < S.length) {
      if (S[i + 3] < 0) S[EST]++;
      S[i + 3] = t;
    } else {
      // without a slot (none was free, or a smaller ring dropped it)
      if (t !== -2) S[EST]++;
      this._d = -2;
    }
  }
}

/** "end", "close", "error": the connection is gone; only the first of them releases it. */
function onGone(this: any): void {
  var t = this._d,
    i = RING;
  if (t) {
    this._d = 0;
    while (t > 0 && i < S.length && S[i + 3] !== t && S[i + 3] !== -t) i += 4;
    // a slotted ticket whose slot a smaller ring dropped counts as established
    if ((t > 0 && i < S.length ? S[i + 3] > 0 : t > 0 || t < -1) && S[EST] > 0) S[EST]--;
    if (t > 0 && i < S.length) S[i + 3] = 0;
  }
}

export function count(d: any, out?: any): void {
  var o = out === 1 ? 1 : 0;
  NS[o] += d ? (typeof d === "string" ? utf8Write(d, null, 0) : d.length || d.byteLength || 0) : 0;
  NS[o + 2]++;
}

/** A port starts or stops listening: the total stays exact, a full table lists what it can. */
export function listening(o: number, port: number, on: number): void {
  var i;
  if (on || S[o]) S[o] += on ? 1 : -1;
  for (i = o + 1; i < o + 9; i++) {
    if (S[i] === (on ? 0 : port)) {
      S[i] = on ? port : 0;
      break;
    }
  }
}

/** Parsed without split or regex (no allocation). */
export function parseIp(s: unknown): number {
  var ip = 0,
    v = -1,
    dots = 0,
    i,
    c;
  if (typeof s !== "string") return 0;
  for (i = s.indexOf("::ffff:") ? 0 : 7; i <= s.length; i++) {
    c = s.charCodeAt(i) - 48; // NaN past the end
    if (c >= 0 && c <= 9) {
      v = (v < 0 ? 0 : v * 10) + c;
      if (v > 255) return 0;
    } else if (v < 0 || (c === c && c !== -2)) return 0;
    else {
      ip = (ip << 8) | v;
      v = -1;
      dots++;
    }
  }
  return dots === 4 ? ip : 0;
}
