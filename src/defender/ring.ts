// Metrics state: the connection ring, the listening port tables and the network counters (track.ts takes and
// releases the slots and counts; report.ts reads the state; the agent subtracts what an acknowledged report
// carried). Preallocated typed arrays, no object and no closure per connection: taking and releasing a slot
// allocates nothing.
//
// Internal API:
//   S      Int32Array: [At.DROPPED] and [At.OVF] what writeReport's `info` holds (list entries the last report
//          dropped to fit; connections that found no free slot since the last report), so that the agent passes S
//          as `info`; [At.EST] established connections, exact, slot or not; [At.SEQ] last ticket issued (below 2^31:
//          plain integers on Espruino too); [At.TP ..] and [At.UP ..] listening TCP and UDP ports: the exact total,
//          then Ports.TABLE ports (0 free); [At.AGENT ..] the running agent's numbers (agent.ts, Num: here, not in a
//          typed array of its own, which would cost some 5 JsVars more); from At.RING on, Slot.SIZE per slot: remote
//          IPv4 address (a.b.c.d = a << 24 | b << 16 | ..., 0 unknown), remote port << 16 | local port, ticket (0
//          free, > 0 established, < 0 connecting).
//   NS     Array: bytes in, bytes out, packets in, packets out (exact up to 2^53), then what the report in flight
//          carried of each (Stat.CARRIED on: the agent subtracts it at the report's PUBACK). Not a Float64Array:
//          eight numbers in an Array cost 9 JsVars (one more for each past 2^31), a Float64Array about as many
//          (4 + 64 / 14), and the first Float64Array made 16 more, for good.
//   Neither exists until the first track(), start() or report (setSlots): a module that is only loaded holds no
//   state.
//   setSlots(n)  1..255 slots (default 8); reallocates S, keeping live connections (compacted; any that no
//          longer fit stay counted in the total, unlisted) and everything before At.RING.

/** Where things are in S. */
export const enum At {
  DROPPED = 0,
  OVF = 1,
  EST = 2,
  SEQ = 3,
  TP = 4,
  UP = 13,
  AGENT = 22,
  RING = 38, // At.AGENT + the 16 numbers of agent.ts's Num
}

/** A slot: three ints from At.RING on. */
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
  /** NS[Stat.CARRIED + k]: what the report in flight carried of NS[k]. */
  CARRIED = 4,
}

export const enum Ports {
  /** Listening ports listed per table. */
  TABLE = 8,
  /** Slot.PORTS is the remote port << REMOTE | the local port. */
  REMOTE = 16,
}

export const enum Limits {
  DEFAULT_SLOTS = 8,
  MAX_SLOTS = 255,
}

export var S: Int32Array, NS: number[];

/** setSlots(n): parameters come from `arguments` (a named parameter costs a JsVar for as long as the function
 * exists). No argument: the default ring, unless one exists. */
export function setSlots(n?: number): void;
export function setSlots(): void {
  var wanted = arguments[0],
    length = At.RING + Math.max(1, Math.min(Limits.MAX_SLOTS, wanted | 0 || Limits.DEFAULT_SLOTS)) * Slot.SIZE,
    old = S,
    from,
    to,
    k;
  if (!NS) NS = [0, 0, 0, 0, 0, 0, 0, 0];
  if (old && (old.length === length || wanted === void 0)) return;
  S = new Int32Array(length);
  if (old) {
    for (from = 0; from < At.RING; from++) S[from] = old[from];
    for (to = At.RING; from < old.length; from += Slot.SIZE)
      if (old[from + Slot.TICKET] && to < length) for (k = 0; k < Slot.SIZE; k++) S[to++] = old[from + k];
  }
}
