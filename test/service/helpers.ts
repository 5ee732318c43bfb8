// Service test helpers: reports in both tag styles (the AWS guide's own examples), and a fake device (the npm mqtt
// client) that publishes a report and waits for the service's answer on its accepted/rejected topics.
import mqtt, { type MqttClient, type IClientOptions } from 'mqtt';
import * as cborg from 'cborg';
import { parse as parseJson, stringify as stringifyJson, isInteger } from 'lossless-json';

export type Format = 'cbor' | 'json';

/** The guide's example report, long names, with a report id of our choosing. */
export function longDoc(rid: number | unknown = 1530304554): any {
  return {
    header: { report_id: rid, version: '1.0' },
    metrics: {
      listening_tcp_ports: { ports: [{ interface: 'eth0', port: 24800 }, { interface: 'eth0', port: 22 }, { interface: 'eth0', port: 53 }], total: 3 },
      listening_udp_ports: { ports: [{ interface: 'eth0', port: 5353 }, { interface: 'eth0', port: 67 }], total: 2 },
      network_stats: { bytes_in: 29358693495, bytes_out: 26485035, packets_in: 10013573555, packets_out: 11382615 },
      tcp_connections: {
        established_connections: {
          connections: [
            { local_interface: 'eth0', local_port: 80, remote_addr: '192.168.0.1:8000' },
            { local_interface: 'eth0', local_port: 80, remote_addr: '192.168.0.1:8000' },
          ],
          total: 2,
        },
      },
    },
    custom_metrics: {
      MyMetricOfType_Number: [{ number: 1 }],
      MyMetricOfType_NumberList: [{ number_list: [1, 2, 3] }],
      MyMetricOfType_StringList: [{ string_list: ['value_1', 'value_2'] }],
      MyMetricOfType_IpList: [{ ip_list: ['172.0.0.0', '172.0.0.10'] }],
    },
  };
}

/** The guide's example report, short names. */
export function shortDoc(rid: number | unknown = 1530305228): any {
  return {
    hed: { rid, v: '1.0' },
    met: {
      tp: { pts: [{ if: 'eth0', pt: 24800 }, { if: 'eth0', pt: 22 }, { if: 'eth0', pt: 53 }], t: 3 },
      up: { pts: [{ if: 'eth0', pt: 5353 }, { if: 'eth0', pt: 67 }], t: 2 },
      ns: { bi: 29359307173, bo: 26490711, pi: 10014614051, po: 11387620 },
      tc: {
        ec: {
          cs: [
            { li: 'eth0', lp: 80, rad: '192.168.0.1:8000' },
            { li: 'eth0', lp: 80, rad: '192.168.0.1:8000' },
          ],
          t: 2,
        },
      },
    },
    cmet: {
      MyMetricOfType_Number: [{ number: 1 }],
      MyMetricOfType_NumberList: [{ number_list: [1, 2, 3] }],
      MyMetricOfType_StringList: [{ string_list: ['value_1', 'value_2'] }],
      MyMetricOfType_IpList: [{ ip_list: ['172.0.0.0', '172.0.0.10'] }],
    },
  };
}

export function encode(doc: unknown, format: Format): Buffer {
  return Buffer.from(format === 'json' ? stringifyJson(doc)! : cborg.encode(doc));
}

export function decode(payload: Uint8Array, format: Format): any {
  return format === 'json' ? parseJson(Buffer.from(payload).toString('utf8'), null, exactNumber) : cborg.decode(payload);
}

/** Integers beyond 2^53 as bigints (as cborg decodes them), other numbers as Numbers. */
function exactNumber(text: string): number | bigint {
  const n = Number(text);
  return isInteger(text) && !Number.isSafeInteger(n) ? BigInt(text) : n;
}

export interface Answer {
  /** 'accepted' or 'rejected': the topic it came on. */
  status: string;
  /** Its payload, decoded in the report's format. */
  body: any;
  raw: Buffer;
}

export interface Device {
  client: MqttClient;
  /** Publishes a report (a document, encoded in `format`, or raw bytes) and resolves with the answer. */
  send(report: unknown, raw?: boolean): Promise<Answer>;
  close(): Promise<void>;
}

/** A device connected to `url` that reports as `thing` in `format`, subscribed to both answers first. Its client id
 * is the thing name (as on AWS IoT) unless `opts` says otherwise; `opts` adds TLS (ca, cert, key) and the like. */
export async function device(url: string, thing: string, format: Format, opts: IClientOptions = {}): Promise<Device> {
  const base = `$aws/things/${thing}/defender/metrics/${format}`;
  const client = await mqtt.connectAsync(url, { clientId: thing, reconnectPeriod: 0, ...opts }, false);
  (client.stream as any).setNoDelay?.(true); // no Nagle wait between a PUBACK and the next publish
  await client.subscribeAsync([base + '/accepted', base + '/rejected'], { qos: 1 });
  const waiting: ((a: Answer) => void)[] = [];
  client.on('message', (topic, payload) => {
    const status = topic.slice(base.length + 1);
    waiting.shift()?.({ status, body: decode(payload, format), raw: payload });
  });
  return {
    client,
    async send(report, raw = false) {
      const answer = new Promise<Answer>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no answer within 5 s')), 5000);
        waiting.push((a) => {
          clearTimeout(timer);
          resolve(a);
        });
      });
      await client.publishAsync(base, raw ? Buffer.from(report as Uint8Array) : encode(report, format), { qos: 1 });
      return answer;
    },
    async close() {
      await client.endAsync(!client.connected); // a closed connection's in-flight publish is never acknowledged
    },
  };
}
