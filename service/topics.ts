// Device Defender reserved topics: building and matching, nothing else (like the embedded SDK's Defender_GetTopic /
// Defender_MatchTopic).
//   report:   $aws/things/THING/defender/metrics/FORMAT
//   response: $aws/things/THING/defender/metrics/FORMAT/accepted | /rejected

export type Format = 'cbor' | 'json';
export type Status = 'accepted' | 'rejected';

const PREFIX = '$aws/things/';
const MIDDLE = '/defender/metrics/';

/** The topic filters a collector subscribes to: every thing's reports, one per format. */
export const REPORT_FILTERS: readonly string[] = [`${PREFIX}+${MIDDLE}cbor`, `${PREFIX}+${MIDDLE}json`];

export function reportTopic(thing: string, format: Format): string {
  return PREFIX + thing + MIDDLE + format;
}

export function responseTopic(thing: string, format: Format, status: Status): string {
  return reportTopic(thing, format) + '/' + status;
}

/** The thing, format and status of a response topic; null for any other topic. */
export function matchResponseTopic(topic: string): { thing: string; format: Format; status: Status } | null {
  const slash = topic.lastIndexOf('/');
  const status = topic.slice(slash + 1);
  if (status !== 'accepted' && status !== 'rejected') return null;
  const report = matchReportTopic(topic.slice(0, slash));
  return report && { ...report, status };
}

/** The thing and format of a report topic; null for any other topic (a response topic included). */
export function matchReportTopic(topic: string): { thing: string; format: Format } | null {
  if (!topic.startsWith(PREFIX)) return null;
  const rest = topic.slice(PREFIX.length);
  const i = rest.indexOf(MIDDLE);
  if (i < 0) return null; // an empty thing name is matched, to be answered as invalid
  const thing = rest.slice(0, i);
  const format = rest.slice(i + MIDDLE.length);
  if (thing.includes('/') || (format !== 'cbor' && format !== 'json')) return null;
  return { thing, format };
}
