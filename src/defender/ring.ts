// Metrics state: the static connection ring, the listening port tables and the network counters, fed by
// track.ts and read by report.ts. Preallocated typed arrays, no object per connection: taking and releasing a
// slot allocates nothing.
//
// Internal API:
//   M                      { _est: established connections, exact, slot or not; _ovf: connections that found
//                          no free slot since the last report }
//   setSlots(n)            1..255 slots; reallocates the ring, keeping live connections (compacted; any that no
//                          longer fit stay counted in the total, unlisted). The agent calls it at start.
//   S                      the ring: 4 Int32 per slot: remote IPv4 address (a.b.c.d = a << 24 | b << 16 | ...,
//                          0 unknown), remote port, local port, ticket (0 free, > 0 established, < 0 connecting)
//   take(ip, port, lp, st) a slot for a connection to ip:port from local port lp, state st (1 connecting,
//                          2 established). Returns the socket's ticket: > 0 its slot's, -1 connecting without
//                          a slot, -2 established without a slot.
//   established(t)         the connection of ticket t is up; returns its new ticket
//   release(t)             the connection of ticket t is gone (call once; track.ts guards that)
//   TP, UP                 listening TCP / UDP ports: [0] the exact total, [1..8] the ports (0: free)
//   listening(tab, port, on)  a port starts (on) or stops listening
//   NS, count(out, bytes)  bytes in, bytes out, packets in, packets out since the last report (Float64: exact
//                          up to 2^53); count: one packet of `bytes` in (out 0) or out (out 1)
//   parseIp(s)             "a.b.c.d" (or "::ffff:a.b.c.d") as in S, 0 when it is not IPv4

export var M = { _est: 0, _ovf: 0 };

export var S = new Int32Array(32),
  TP = new Uint16Array(9),
  UP = new Uint16Array(9),
  NS = new Float64Array(4);

/** Last ticket issued (tickets stay below 2^31: plain integers on Espruino too). */
var seq = 0;

export function setSlots(n: number): void {
  n = Math.max(1, Math.min(255, n | 0)) * 4;
  if (n === S.length) return;
  var s = new Int32Array(n);
  for (var i = 0, j = 0; i < S.length; i += 4) {
    if (S[i + 3] && j < n) for (var k = 0; k < 4; ) s[j++] = S[i + k++];
  }
  S = s;
}

export function take(ip: number, port: number, lp: number, st: number): number {
  if (st > 1) M._est++;
  for (var i = 0; i < S.length; i += 4) {
    if (!S[i + 3]) {
      S[i] = ip;
      S[i + 1] = port;
      S[i + 2] = lp;
      seq = seq > 0x7ffffffd ? 1 : seq + 1;
      S[i + 3] = st > 1 ? seq : -seq;
      return seq;
    }
  }
  M._ovf++;
  return -st;
}

/** Index in S of the slot holding ticket t, or -1. */
function find(t: number): number {
  for (var i = 0; t > 0 && i < S.length; i += 4) if (S[i + 3] === t || S[i + 3] === -t) return i;
  return -1;
}

export function established(t: number): number {
  var i = find(t);
  if (i >= 0) {
    if (S[i + 3] < 0) M._est++;
    S[i + 3] = t;
    return t;
  }
  // without a slot (none was free, or a smaller ring dropped it)
  if (t !== -2) M._est++;
  return -2;
}

export function release(t: number): void {
  var i = find(t);
  // a slotted ticket whose slot a smaller ring dropped counts as established
  if ((i >= 0 ? S[i + 3] > 0 : t > 0 || t < -1) && M._est > 0) M._est--;
  if (i >= 0) S[i + 3] = 0;
}

/** A port starts (on) or stops listening: the total stays exact, a full table lists what it can. */
export function listening(tab: Uint16Array, port: number, on: boolean): void {
  if (on || tab[0]) tab[0] += on ? 1 : -1;
  for (var i = 1; i < 9; i++) {
    if (tab[i] === (on ? 0 : port)) {
      tab[i] = on ? port : 0;
      break;
    }
  }
}

export function count(out: number, bytes: number): void {
  NS[out] += bytes;
  NS[out + 2]++;
}

/** Parsed without split or regex (no allocation). */
export function parseIp(s: unknown): number {
  if (typeof s !== "string") return 0;
  var ip = 0,
    v = -1,
    dots = 0;
  for (var i = s.indexOf("::ffff:") ? 0 : 7; i <= s.length; i++) {
    var c = s.charCodeAt(i) - 48; // NaN past the end
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
