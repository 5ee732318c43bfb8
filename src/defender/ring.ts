// Metrics state: the static connection ring, the listening port tables and the network counters.
// One module-level state `M`, fed by track.ts and read by report.ts. Parallel preallocated typed arrays,
// no object per connection: taking and releasing a slot allocates nothing.
//
// Internal API:
//   M                      the state (fields below); created with 8 slots when the module loads
//   setSlots(n)            1..255 slots; reallocates the ring, keeping live connections (compacted; any
//                          that no longer fit stay counted in the total, unlisted). The agent calls it at start.
//   take(ip, port, lp, st) a slot for a connection to ip:port (ip = 32-bit IPv4 number, 0 = unknown) from local
//                          port lp, state st (1 connecting, 2 established). Returns a ticket for the socket:
//                          > 0 a slot's id, -1 connecting without a slot, -2 established without a slot.
//   established(t)         the connection of ticket t is up; returns the new ticket
//   release(t)             the connection of ticket t is gone (call once; track.ts guards that)
//   portAdd(tab, port) / portDel(tab, port)   listening ports: tab M._tp (TCP) or M._up (UDP); a
//                          closed port leaves a 0 hole that the next listen reuses; totals stay exact
//   count(out, bytes)      one packet of `bytes` in (out false) or out (out true)
//   parseIp(s)             "a.b.c.d" (or "::ffff:a.b.c.d") to a 32-bit number, 0 when it is not IPv4
//
// Fields: _n slots; per slot _ip (Uint32), _rp and _lp (Uint16 remote / local port), _st (0 free,
// 1 connecting, 2 established), _id (Uint32 ticket of its holder); _est established connections, exact,
// slot or not; _ovf connections that found no free slot since the last report; _seq last ticket issued;
// _tp / _up port tables (Uint16, 8 each) with exact totals _tpn / _upn; _ns bytes in, bytes out,
// packets in, packets out since the last report (Float64: exact up to 2^53).

export interface Metrics {
  _n: number;
  _ip: Uint32Array;
  _rp: Uint16Array;
  _lp: Uint16Array;
  _st: Uint8Array;
  _id: Uint32Array;
  _est: number;
  _ovf: number;
  _seq: number;
  _tp: Uint16Array;
  _tpn: number;
  _up: Uint16Array;
  _upn: number;
  _ns: Float64Array;
}

/** Size of each listening port table. */
export var PORTS = 8;

export var M: Metrics = {
  _n: 0,
  _ip: new Uint32Array(0),
  _rp: new Uint16Array(0),
  _lp: new Uint16Array(0),
  _st: new Uint8Array(0),
  _id: new Uint32Array(0),
  _est: 0,
  _ovf: 0,
  _seq: 0,
  _tp: new Uint16Array(PORTS),
  _tpn: 0,
  _up: new Uint16Array(PORTS),
  _upn: 0,
  _ns: new Float64Array(4),
};

export function setSlots(n: number): void {
  n = Math.max(1, Math.min(255, n | 0));
  if (n === M._n) return;
  var ip = new Uint32Array(n),
    rp = new Uint16Array(n),
    lp = new Uint16Array(n),
    st = new Uint8Array(n),
    id = new Uint32Array(n);
  var j = 0;
  for (var i = 0; i < M._n; i++) {
    if (M._st[i] && j < n) {
      ip[j] = M._ip[i];
      rp[j] = M._rp[i];
      lp[j] = M._lp[i];
      st[j] = M._st[i];
      id[j++] = M._id[i];
    }
  }
  M._n = n;
  M._ip = ip;
  M._rp = rp;
  M._lp = lp;
  M._st = st;
  M._id = id;
}
setSlots(8);

export function take(ip: number, port: number, lp: number, st: number): number {
  if (st > 1) M._est++;
  for (var i = 0; i < M._n; i++) {
    if (!M._st[i]) {
      M._ip[i] = ip;
      M._rp[i] = port;
      M._lp[i] = lp;
      M._st[i] = st;
      // tickets stay below 2^31 so they are plain integers on Espruino too
      M._seq = M._seq >= 0x7ffffffe ? 1 : M._seq + 1;
      return (M._id[i] = M._seq);
    }
  }
  M._ovf++;
  return -st;
}

/** Slot index holding ticket t, or -1. */
function find(t: number): number {
  for (var i = 0; i < M._n; i++) if (M._st[i] && M._id[i] === t) return i;
  return -1;
}

export function established(t: number): number {
  var i = t > 0 ? find(t) : -1;
  if (i >= 0) {
    if (M._st[i] < 2) M._est++;
    M._st[i] = 2;
    return t;
  }
  // without a slot (none was free, or a smaller ring dropped it)
  if (t !== -2) M._est++;
  return -2;
}

export function release(t: number): void {
  var i = t > 0 ? find(t) : -1;
  var was = i >= 0 ? M._st[i] : t > 0 ? 2 : -t;
  if (i >= 0) M._st[i] = 0;
  if (was > 1 && M._est > 0) M._est--;
}

/** Ports live in the first free (zero) entry; a table that is full keeps counting in the total only. */
export function portAdd(tab: Uint16Array, port: number): void {
  for (var i = 0; i < tab.length; i++) {
    if (!tab[i]) {
      tab[i] = port;
      break;
    }
  }
  if (tab === M._up) M._upn++;
  else M._tpn++;
}

export function portDel(tab: Uint16Array, port: number): void {
  for (var i = 0; i < tab.length; i++) {
    if (tab[i] === port) {
      tab[i] = 0;
      break;
    }
  }
  if (tab === M._up) M._upn = Math.max(0, M._upn - 1);
  else M._tpn = Math.max(0, M._tpn - 1);
}

export function count(out: boolean, bytes: number): void {
  M._ns[out ? 1 : 0] += bytes;
  M._ns[out ? 3 : 2]++;
}

/** Parsed without split or regex (no allocation). */
export function parseIp(s: unknown): number {
  if (typeof s !== "string") return 0;
  var i = s.indexOf("::ffff:") === 0 ? 7 : 0;
  var ip = 0,
    v = -1,
    dots = 0;
  for (; i <= s.length; i++) {
    var c = i < s.length ? s.charCodeAt(i) : 46;
    if (c >= 48 && c <= 57) {
      v = v < 0 ? c - 48 : v * 10 + c - 48;
      if (v > 255) return 0;
    } else if (c === 46 && v >= 0 && dots < 4) {
      ip = ip * 256 + v;
      v = -1;
      dots++;
    } else return 0;
  }
  return dots === 4 ? ip : 0;
}
