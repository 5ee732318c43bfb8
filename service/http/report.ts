// A decoded metrics report, read in either tag style: the numbers the charts plot (under AWS's metric names) and
// the readable view of the latest report. Reading only: validate.ts has already checked the document (the tag
// table there is private to the validator; the pairs below are the few fields the dashboard reads).
const pick = (o: any, long: string, short: string): any => (o && typeof o === 'object' ? (o[long] ?? o[short]) : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : undefined);

export interface ReportView {
  connections: { remote: string; localPort?: number; localInterface?: string }[];
  establishedTotal?: number;
  listeningTcp: number[];
  listeningUdp: number[];
  network?: { bytesIn?: number; bytesOut?: number; packetsIn?: number; packetsOut?: number };
  /** Custom metrics as the device sent them: name -> number, number list, string list or IP list. */
  custom: Record<string, unknown>;
}

function ports(block: any): number[] {
  return (pick(block, 'ports', 'pts') ?? []).map((p: any) => num(pick(p, 'port', 'pt'))).filter((p: unknown) => p !== undefined);
}

/** The document, readable: connections with their remote addresses, listening ports, counters, custom metrics. */
export function viewReport(doc: unknown): ReportView {
  const met = pick(doc, 'metrics', 'met');
  const ec = pick(pick(met, 'tcp_connections', 'tc'), 'established_connections', 'ec');
  const ns = pick(met, 'network_stats', 'ns');
  const custom: Record<string, unknown> = {};
  for (const [name, entries] of Object.entries(pick(doc, 'custom_metrics', 'cmet') ?? {})) {
    const e: any = Array.isArray(entries) ? entries[0] : undefined;
    custom[name] = e && (num(e.number) ?? e.number_list ?? e.string_list ?? e.ip_list);
  }
  const tp = pick(met, 'listening_tcp_ports', 'tp');
  const up = pick(met, 'listening_udp_ports', 'up');
  return {
    connections: (pick(ec, 'connections', 'cs') ?? []).map((c: any) => ({
      remote: String(pick(c, 'remote_addr', 'rad')),
      localPort: num(pick(c, 'local_port', 'lp')),
      localInterface: pick(c, 'local_interface', 'li'),
    })),
    establishedTotal: num(pick(ec, 'total', 't')),
    listeningTcp: ports(tp),
    listeningUdp: ports(up),
    network: ns && {
      bytesIn: num(pick(ns, 'bytes_in', 'bi')),
      bytesOut: num(pick(ns, 'bytes_out', 'bo')),
      packetsIn: num(pick(ns, 'packets_in', 'pi')),
      packetsOut: num(pick(ns, 'packets_out', 'po')),
    },
    custom: JSON.parse(JSON.stringify(custom, (_k, v) => (typeof v === 'bigint' ? Number(v) : v))),
  };
}

/** The numbers of one report under AWS's metric names (custom number metrics under their own name). A block the
 * report leaves out gives no value (not zero). */
export function reportMetrics(doc: unknown): Record<string, number> {
  const v = viewReport(doc);
  const met = pick(doc, 'metrics', 'met');
  const out: Record<string, number> = {};
  const ec = pick(pick(met, 'tcp_connections', 'tc'), 'established_connections', 'ec');
  if (ec) out['aws:num-established-tcp-connections'] = v.establishedTotal ?? v.connections.length;
  if (v.network) {
    const n = v.network;
    const pairs: [string, number | undefined][] = [
      ['aws:all-bytes-in', n.bytesIn],
      ['aws:all-bytes-out', n.bytesOut],
      ['aws:all-packets-in', n.packetsIn],
      ['aws:all-packets-out', n.packetsOut],
    ];
    for (const [k, x] of pairs) if (x !== undefined) out[k] = x;
  }
  if (pick(met, 'listening_tcp_ports', 'tp')) out['aws:num-listening-tcp-ports'] = v.listeningTcp.length;
  if (pick(met, 'listening_udp_ports', 'up')) out['aws:num-listening-udp-ports'] = v.listeningUdp.length;
  for (const [name, x] of Object.entries(v.custom)) if (typeof x === 'number') out[name] = x;
  return out;
}
