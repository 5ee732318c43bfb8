// Metrics state: the connection ring, the listening port tables and the network counters, and the per-socket
// listeners that feed them (track.ts takes the slots and wires sockets to them; report.ts reads the state).
// Preallocated typed arrays, no object and no closure per connection: taking and releasing a slot allocates
// nothing.
//
// Internal API:
//   S                      Int32Array: [EST] established connections, exact, slot or not; [OVF] connections
//                          that found no free slot since the last report; [SEQ] last ticket issued (below 2^31:
//                          plain integers on Espruino too); [TP..TP+8] and [UP..UP+8] listening TCP and UDP
//                          ports: the exact total, then 8 ports (0 free); from RING on, 3 per slot: remote IPv4
//                          address (a.b.c.d = a << 24 | b << 16 | ..., 0 unknown), remote port << 16 | local
//                          port, ticket (0 free, > 0 established, < 0 connecting)
//   NS                     Float64Array: bytes in, bytes out, packets in, packets out since the last report
//                          (exact up to 2^53)
//   setSlots(n)            1..255 slots; reallocates S, keeping live connections (compacted; any that no longer
//                          fit stay counted in the total, unlisted). The agent calls it at start.
//   tWrite                 a tracked socket's write and a tracked dgram socket's send: one packet out, then
//                          the platform's own, kept in _w (on Espruino a socket's native methods are not on
//                          what Object.getPrototypeOf returns)
//   onConnect, onGone      listeners of a tracked socket (its ticket in _d: > 0 its slot's, -1 connecting
//                          without a slot, -2 established without a slot): "connect" makes it established,
//                          the first of "end", "close" or "error" releases it, exactly once
//   count(d, out)          one packet of data d in (out not 1) or out (out 1); also the "data" and "message"
//                          listener itself (their other arguments are never 1)
//   parseIp(s)             "a.b.c.d" (or "::ffff:a.b.c.d") as in S, 0 when it is not IPv4
import { utf8Write } from "../common/utf8";

export var EST = 0,
  OVF = 1,
  SEQ = 2,
  TP = 3,
  UP = 12,
  RING = 21;

export var S = new Int32Array(RING + 24),
  NS = new Float64Array(4);

export function setSlots(n: number): void {
  var s, i, j, k;
  n = RING + Math.max(1, Math.min(255, n | 0)) * 3;
  if (n === S.length) return;
  s = new Int32Array(n);
  for (i = 0; i < RING; i++) s[i] = S[i];
  for (j = i; i < S.length; i += 3) if (S[i + 2] && j < n) for (k = 0; k < 3; ) s[j++] = S[i + k++];
  S = s;
}

export function tWrite(this: any, d: any): any {
  count(d, 1);
  return this._w.apply(this, arguments);
}

/** "connect": the connection is established (its slot's ticket turns positive). */
export function onConnect(this: any): void {
  var t = this._d,
    i = RING;
  if (t) {
    while (t > 0 && i < S.length && S[i + 2] !== t && S[i + 2] !== -t) i += 3;
    if (t > 0 && i < S.length) {
      if (S[i + 2] < 0) S[EST]++;
      S[i + 2] = t;
    } else {
      // without a slot (none was free, or a smaller ring dropped it)
      if (t !== -2) S[EST]++;
      this._d = -2;
    }
  }
}

/** "end", "close", "error": the connection is gone; only the first of them releases it. */
export function onGone(this: any): void {
  var t = this._d,
    i = RING;
  if (t) {
    this._d = 0;
    while (t > 0 && i < S.length && S[i + 2] !== t && S[i + 2] !== -t) i += 3;
    // a slotted ticket whose slot a smaller ring dropped counts as established
    if ((t > 0 && i < S.length ? S[i + 2] > 0 : t > 0 || t < -1) && S[EST] > 0) S[EST]--;
    if (t > 0 && i < S.length) S[i + 2] = 0;
  }
}

export function count(d: any, out?: any): void {
  var o = out === 1 ? 1 : 0;
  NS[o] += d ? (typeof d === "string" ? utf8Write(d, null, 0) : d.length || d.byteLength || 0) : 0;
  NS[o + 2]++;
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
