// The metrics Detect knows: AWS's metric names, each with its type and where it is measured: device-side ones in an
// accepted report (long or short tag names), cloud-side ones in what the embedded broker saw of a thing during an
// interval (broker/meter.ts); and the custom metrics a report carries. One table: profile validation, evaluation,
// the store and the docs all read it.
//
// Sources: AWS IoT Device Defender developer guide, "Device-side metrics", "Cloud-side metrics", "Custom metrics".
import type { Usage } from '../broker/meter.ts';
import type { Criteria } from './profile.ts';

/** What a datapoint holds. number: one number; the list types: a set of values. */
export type MetricType = 'number' | 'ip-address-list' | 'port-list' | 'number-list' | 'string-list';

export type MetricValue = number | number[] | string[];

export interface MetricSpec {
  type: MetricType;
  /** device: the thing reports it; cloud: the broker sees it (only the embedded one can tell this service). */
  side: 'device' | 'cloud';
  /** A delta per report or per interval (bytes, packets, messages): `durationSeconds` sums it over the window. */
  counter?: boolean;
  /** The value in a report's `metrics` (device-side) or in a thing's Usage of one interval (cloud-side), as stored;
   * absent: not measured here (a profile naming it loads, and sees no datapoints). */
  read?: (src: any) => MetricValue | undefined;
  /** The datapoint, where a criteria judges something else than the stored value. */
  datapoint?: (u: Usage, c: Criteria) => MetricValue | undefined;
}

/** The value of a long or short tag. */
const g = (o: any, long: string, short: string): any => (o && typeof o === 'object' ? (o[long] ?? o[short]) : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : undefined);

function established(met: any): any {
  return g(g(met, 'tcp_connections', 'tc'), 'established_connections', 'ec');
}

/** "a.b.c.d:port" or "[v6]:port" -> the address. */
export function hostOf(remote: string): string {
  const m = /^\[([^\]]+)\]:\d+$/.exec(remote);
  return m ? m[1] : remote.slice(0, remote.lastIndexOf(':'));
}

function portList(long: string, short: string) {
  return (met: any): number[] | undefined => {
    const block = g(met, long, short);
    const pts = g(block, 'ports', 'pts');
    if (!Array.isArray(pts)) return undefined;
    return pts.map((p: any) => num(g(p, 'port', 'pt'))!).filter((p) => p !== undefined);
  };
}

function portCount(long: string, short: string) {
  return (met: any): number | undefined => {
    const block = g(met, long, short);
    if (!block) return undefined;
    return num(g(block, 'total', 't')) ?? g(block, 'ports', 'pts')?.length;
  };
}

function stat(long: string, short: string) {
  return (met: any): number | undefined => num(g(g(met, 'network_stats', 'ns'), long, short));
}

export const METRICS: Readonly<Record<string, MetricSpec>> = {
  'aws:num-established-tcp-connections': {
    type: 'number',
    side: 'device',
    read: (met) => {
      const ec = established(met);
      if (!ec) return undefined;
      return num(g(ec, 'total', 't')) ?? g(ec, 'connections', 'cs')?.length;
    },
  },
  'aws:all-bytes-in': { type: 'number', side: 'device', counter: true, read: stat('bytes_in', 'bi') },
  'aws:all-bytes-out': { type: 'number', side: 'device', counter: true, read: stat('bytes_out', 'bo') },
  'aws:all-packets-in': { type: 'number', side: 'device', counter: true, read: stat('packets_in', 'pi') },
  'aws:all-packets-out': { type: 'number', side: 'device', counter: true, read: stat('packets_out', 'po') },
  'aws:destination-ip-addresses': {
    type: 'ip-address-list',
    side: 'device',
    read: (met) => {
      const cs = g(established(met), 'connections', 'cs');
      if (!Array.isArray(cs)) return undefined;
      return [...new Set<string>(cs.map((c: any) => hostOf(String(g(c, 'remote_addr', 'rad')))))];
    },
  },
  'aws:listening-tcp-ports': { type: 'port-list', side: 'device', read: portList('listening_tcp_ports', 'tp') },
  'aws:listening-udp-ports': { type: 'port-list', side: 'device', read: portList('listening_udp_ports', 'up') },
  'aws:num-listening-tcp-ports': { type: 'number', side: 'device', read: portCount('listening_tcp_ports', 'tp') },
  'aws:num-listening-udp-ports': { type: 'number', side: 'device', read: portCount('listening_udp_ports', 'up') },
  // cloud-side: what the broker saw of the thing in one interval
  'aws:num-messages-sent': { type: 'number', side: 'cloud', counter: true, read: (u: Usage) => u.messagesSent },
  'aws:num-messages-received': { type: 'number', side: 'cloud', counter: true, read: (u: Usage) => u.messagesReceived },
  // "the size of each message": an interval is normal when every message in it is, so the datapoint is the message
  // the criteria is most likely to refuse (the largest for less-than..., the smallest for greater-than...); with
  // durationSeconds, the bytes of all messages in the window (AWS's statistical example: "cumulative size")
  'aws:message-byte-size': {
    type: 'number',
    side: 'cloud',
    counter: true,
    read: (u: Usage) => u.largest,
    datapoint: (u, c) => (c.durationSeconds !== undefined ? u.bytes : c.op.startsWith('less') ? u.largest : u.smallest),
  },
  'aws:num-authorization-failures': { type: 'number', side: 'cloud', counter: true, read: (u: Usage) => u.authorizationFailures },
  'aws:num-connection-attempts': { type: 'number', side: 'cloud', counter: true, read: (u: Usage) => u.connectionAttempts },
  'aws:num-disconnects': { type: 'number', side: 'cloud', counter: true, read: (u: Usage) => u.disconnects },
  // per reason: needs AWS's metricDimension on the disconnect reason, which aedes does not give
  'aws:num-disconnects-per-reason': { type: 'number', side: 'cloud', counter: true },
  'aws:source-ip-address': { type: 'ip-address-list', side: 'cloud', read: (u: Usage) => (u.addresses.length ? u.addresses : undefined) },
};

const DEVICE_SIDE = Object.entries(METRICS).filter(([, m]) => m.side === 'device' && m.read);
const CLOUD_SIDE = Object.entries(METRICS).filter(([, m]) => m.side === 'cloud' && m.read);

/** A custom metric's type by the key it is reported under. */
const CUSTOM_TYPES: Record<string, MetricType> = { number: 'number', number_list: 'number-list', string_list: 'string-list', ip_list: 'ip-address-list' };

export interface Read {
  /** AWS's metrics by name, custom metrics by their own name. */
  values: Record<string, MetricValue>;
  /** The type of each value (a custom metric's from the key it came under). */
  types: Record<string, MetricType>;
  /** Cloud-side: the interval's usage the values came from (for a spec's `datapoint`). */
  usage?: Usage;
}

/** Every metric value in an accepted report. */
export function readMetrics(doc: any): Read {
  const values: Record<string, MetricValue> = {};
  const types: Record<string, MetricType> = {};
  const met = g(doc, 'metrics', 'met');
  if (met) {
    for (const [name, spec] of DEVICE_SIDE) {
      const v = spec.read!(met);
      if (v !== undefined) {
        values[name] = v;
        types[name] = spec.type;
      }
    }
  }
  const cmet = g(doc, 'custom_metrics', 'cmet');
  if (cmet && typeof cmet === 'object') {
    for (const [name, list] of Object.entries<any>(cmet)) {
      const one = Array.isArray(list) ? list[0] : undefined;
      const kind = one && typeof one === 'object' ? Object.keys(one)[0] : undefined;
      if (!kind || !Object.hasOwn(CUSTOM_TYPES, kind)) continue;
      const v = one[kind];
      values[name] = kind === 'number' ? num(v)! : kind === 'string_list' || kind === 'ip_list' ? v.map(String) : v.map((x: unknown) => num(x)!);
      types[name] = CUSTOM_TYPES[kind];
    }
  }
  return { values, types };
}

/** The cloud-side metric values of one thing's interval. */
export function readUsage(u: Usage): Read {
  const values: Record<string, MetricValue> = {};
  const types: Record<string, MetricType> = {};
  for (const [name, spec] of CLOUD_SIDE) {
    const v = spec.read!(u);
    if (v !== undefined) values[name] = v;
    // (a datapoint can be there without a stored value: the bytes of no message, in a window)
    types[name] = spec.type;
  }
  return { values, types, usage: u };
}
