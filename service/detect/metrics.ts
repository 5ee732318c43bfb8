// The metrics Detect knows: AWS's device-side metric names, each with its type and where it is in an accepted report
// (long or short tag names), and the custom metrics a report carries. One table: profile validation, evaluation,
// the store and the docs all read it.
//
// Sources: AWS IoT Device Defender developer guide, "Device-side metrics", "Cloud-side metrics", "Custom metrics".
/** What a datapoint holds. number: one number; the list types: a set of values. */
export type MetricType = 'number' | 'ip-address-list' | 'port-list' | 'number-list' | 'string-list';

export type MetricValue = number | number[] | string[];

export interface MetricSpec {
  type: MetricType;
  /** A delta per report (bytes, packets): `durationSeconds` sums it over the window. */
  counter?: boolean;
  /** Device-side: read from the report. Cloud-side metrics are known (a profile naming them loads) but not measured here. */
  read?: (met: any) => MetricValue | undefined;
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
    read: (met) => {
      const ec = established(met);
      if (!ec) return undefined;
      return num(g(ec, 'total', 't')) ?? g(ec, 'connections', 'cs')?.length;
    },
  },
  'aws:all-bytes-in': { type: 'number', counter: true, read: stat('bytes_in', 'bi') },
  'aws:all-bytes-out': { type: 'number', counter: true, read: stat('bytes_out', 'bo') },
  'aws:all-packets-in': { type: 'number', counter: true, read: stat('packets_in', 'pi') },
  'aws:all-packets-out': { type: 'number', counter: true, read: stat('packets_out', 'po') },
  'aws:destination-ip-addresses': {
    type: 'ip-address-list',
    read: (met) => {
      const cs = g(established(met), 'connections', 'cs');
      if (!Array.isArray(cs)) return undefined;
      return [...new Set<string>(cs.map((c: any) => hostOf(String(g(c, 'remote_addr', 'rad')))))];
    },
  },
  'aws:listening-tcp-ports': { type: 'port-list', read: portList('listening_tcp_ports', 'tp') },
  'aws:listening-udp-ports': { type: 'port-list', read: portList('listening_udp_ports', 'up') },
  'aws:num-listening-tcp-ports': { type: 'number', read: portCount('listening_tcp_ports', 'tp') },
  'aws:num-listening-udp-ports': { type: 'number', read: portCount('listening_udp_ports', 'up') },
  // cloud-side: what the broker sees (not measured by this service yet)
  'aws:num-messages-sent': { type: 'number', counter: true },
  'aws:num-messages-received': { type: 'number', counter: true },
  'aws:message-byte-size': { type: 'number' },
  'aws:num-authorization-failures': { type: 'number', counter: true },
  'aws:num-connection-attempts': { type: 'number', counter: true },
  'aws:num-disconnects': { type: 'number', counter: true },
  'aws:num-disconnects-per-reason': { type: 'number', counter: true },
  'aws:source-ip-address': { type: 'ip-address-list' },
};

/** A custom metric's type by the key it is reported under. */
const CUSTOM_TYPES: Record<string, MetricType> = { number: 'number', number_list: 'number-list', string_list: 'string-list', ip_list: 'ip-address-list' };

export interface Read {
  /** AWS's device-side metrics by name, custom metrics by their own name. */
  values: Record<string, MetricValue>;
  /** The type of each value (a custom metric's from the key it came under). */
  types: Record<string, MetricType>;
}

/** Every metric value in an accepted report. */
export function readMetrics(doc: any): Read {
  const values: Record<string, MetricValue> = {};
  const types: Record<string, MetricType> = {};
  const met = g(doc, 'metrics', 'met');
  if (met) {
    for (const [name, spec] of Object.entries(METRICS)) {
      const v = spec.read?.(met);
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
