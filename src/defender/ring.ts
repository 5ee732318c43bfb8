// Metrics state: the connection ring, the listening port tables and the network counters (track.ts takes and
// releases the slots and counts; report.ts reads the state; the agent subtracts what an acknowledged report
// carried). Preallocated typed arrays, no object and no closure per connection: taking and releasing a slot
// allocates nothing.
//
// Internal API:
//   S                      Int32Array: [EST] established connections, exact, slot or not; [OVF] connections
//                          that found no free slot since the last report; [SEQ] last ticket issued (below 2^31:
//                          plain integers on Espruino too); [TP..TP+8] and [UP..UP+8] listening TCP and UDP
//                          ports: the exact total, then 8 ports (0 free); from RING on, 3 per slot: remote IPv4
//                          address (a.b.c.d = a << 24 | b << 16 | ..., 0 unknown), remote port << 16 | local
//                          port, ticket (0 free, > 0 established, < 0 connecting). No slot until the first
//                          track() or setSlots(): a device that tracks nothing keeps no ring.
//   NS                     Float64Array: bytes in, bytes out, packets in, packets out (exact up to 2^53)
//   setSlots(n)            1..255 slots; reallocates S, keeping live connections (compacted; any that no longer
//                          fit stay counted in the total, unlisted). The agent calls it at start; the first
//                          track() makes the default 8.
export var EST = 0,
  OVF = 1,
  SEQ = 2,
  TP = 3,
  UP = 12,
  RING = 21;

/** A slot: three ints from RING on. */
export const enum Slot {
  ADDRESS = 0,
  PORTS = 1,
  TICKET = 2,
  SIZE = 3,
}

/** A slot's ticket, also a tracked socket's (its `_d`, which finds its slot): > 0 established, < 0 connecting,
 * or one of these. */
export const enum Ticket {
  RELEASED = 0,
  CONNECTING_WITHOUT_SLOT = -1,
  ESTABLISHED_WITHOUT_SLOT = -2,
  /** Tickets wrap below 2^31 - 1, so that -ticket and ticket + 1 stay plain 32-bit integers. */
  LAST = 0x7ffffffd,
}

export const enum Stat {
  BYTES_IN = 0,
  BYTES_OUT = 1,
  PACKETS_IN = 2,
  PACKETS_OUT = 3,
}

export const enum Limits {
  DEFAULT_SLOTS = 8,
  MAX_SLOTS = 255,
}

export var S = new Int32Array(RING),
  NS = new Float64Array(4);

export function setSlots(n: number): void {
  var length = RING + Math.max(1, Math.min(Limits.MAX_SLOTS, n | 0)) * Slot.SIZE,
    grown,
    from,
    to,
    k;
  if (length === S.length) return;
  grown = new Int32Array(length);
  for (from = 0; from < RING; from++) grown[from] = S[from];
  for (to = RING; from < S.length; from += Slot.SIZE)
    if (S[from + Slot.TICKET] && to < length) for (k = 0; k < Slot.SIZE; k++) grown[to++] = S[from + k];
  S = grown;
}
