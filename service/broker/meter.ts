// What the embedded broker sees of each thing, counted per interval: AWS's cloud-side metrics (messages sent and
// received, their sizes, authorization failures, connection attempts, disconnects, source addresses). embedded.ts
// calls it from aedes's hooks; Detect takes each interval's usage (take()) and evaluates it like a report.
// A thing is the identity the policy gives a client (policy.ts): its client id.
import { isIPv4 } from 'node:net';

/** One thing's usage during one interval. */
export interface Usage {
  /** CONNECTs with its client id, accepted or not. */
  connectionAttempts: number;
  /** Its CONNECTs, PUBLISHes and SUBSCRIBEs the policy refused. */
  authorizationFailures: number;
  /** PUBLISHes it sent that the broker took. */
  messagesSent: number;
  /** Messages the broker delivered to it. */
  messagesReceived: number;
  /** Its connections that ended, whatever the reason. */
  disconnects: number;
  /** Payload bytes of the messages it sent, and its largest and smallest message (none: undefined). */
  bytes: number;
  largest?: number;
  smallest?: number;
  /** The addresses it was connected from during the interval (its connections then open, or opened meanwhile). */
  addresses: string[];
}

const fresh = (): Usage => ({ connectionAttempts: 0, authorizationFailures: 0, messagesSent: 0, messagesReceived: 0, disconnects: 0, bytes: 0, addresses: [] });

/** An IPv4 peer of a dual-stack socket shows as ::ffff:a.b.c.d; a profile's CIDRs name it a.b.c.d. */
function plain(address: string): string {
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : '';
  return isIPv4(v4) ? v4 : address;
}

export class Meter {
  private interval = new Map<string, Usage>();
  /** Intervals of zeros given to each thing since its last activity. */
  private readonly quiet = new Map<string, number>();
  /** Each thing's open connections and their addresses. */
  private readonly open = new Map<string, Map<object, string>>();

  private usage(thing: string): Usage {
    let u = this.interval.get(thing);
    if (!u) {
      u = fresh();
      for (const address of this.open.get(thing)?.values() ?? []) if (!u.addresses.includes(address)) u.addresses.push(address);
      this.interval.set(thing, u);
    }
    return u;
  }

  connectionAttempt(thing: string): void {
    this.usage(thing).connectionAttempts++;
  }

  authorizationFailure(thing: string): void {
    this.usage(thing).authorizationFailures++;
  }

  connected(thing: string, connection: object, address: string | undefined): void {
    if (address === undefined) return;
    const a = plain(address);
    let conns = this.open.get(thing);
    if (!conns) this.open.set(thing, (conns = new Map()));
    conns.set(connection, a);
    const u = this.usage(thing);
    if (!u.addresses.includes(a)) u.addresses.push(a);
  }

  disconnected(thing: string, connection: object): void {
    this.usage(thing).disconnects++;
    const conns = this.open.get(thing);
    if (conns?.delete(connection) && !conns.size) this.open.delete(thing);
  }

  sent(thing: string, payloadBytes: number): void {
    const u = this.usage(thing);
    u.messagesSent++;
    u.bytes += payloadBytes;
    u.largest = Math.max(u.largest ?? 0, payloadBytes);
    u.smallest = Math.min(u.smallest ?? Infinity, payloadBytes);
  }

  received(thing: string): void {
    this.usage(thing).messagesReceived++;
  }

  /** Ends the interval: the usage of every thing active in it or connected now (zeros for one connected and idle),
   * and zeros for a thing gone quiet, for `linger` intervals after its last activity (so that a window's sum and
   * a violation can still clear); the next interval starts at zero. */
  take(linger = 0): Map<string, Usage> {
    for (const thing of this.open.keys()) this.usage(thing);
    const done = this.interval;
    this.interval = new Map();
    for (const thing of done.keys()) this.quiet.set(thing, 0);
    for (const [thing, n] of this.quiet) {
      if (done.has(thing)) continue;
      if (n >= linger) this.quiet.delete(thing);
      else {
        this.quiet.set(thing, n + 1);
        done.set(thing, fresh());
      }
    }
    return done;
  }
}
