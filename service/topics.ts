// Device Defender reserved topics: building and matching, nothing else (like the embedded SDK's Defender_GetTopic /
// Defender_MatchTopic).
//   report:   $aws/things/THING/defender/metrics/FORMAT
//   response: $aws/things/THING/defender/metrics/FORMAT/accepted | /rejected
//   alert:    defender/alerts/THING (Detect's violation events; the prefix can be changed)

export type Format = 'cbor' | 'json';
export type Status = 'accepted' | 'rejected';

const PREFIX = '$aws/things/';
const MIDDLE = '/defender/metrics/';

/** The topic filters a collector subscribes to: every thing's reports, one per format; `prefix` in place of
 * `$aws/things/` where a broker republishes them (see sharedFilter). */
export const reportFilters = (prefix = PREFIX): string[] => [`${prefix}+${MIDDLE}cbor`, `${prefix}+${MIDDLE}json`];
export const REPORT_FILTERS: readonly string[] = reportFilters();

/** `filter` shared by the collectors of `group` (MQTT 5 shared subscriptions; mosquitto takes them from 3.1.1
 * clients too): the broker hands each matching message to one of them. mosquitto 2.0 roots every $share filter
 * under the topics that do not start with "$" (src/subs.c, sub__topic_tokenise), so a shared `$aws/...` filter
 * never matches there: its reports must be republished under another prefix first (docs/service.md). */
export function sharedFilter(group: string, filter: string): string {
  if (!/^[^/+#]+$/.test(group)) throw new Error(`share group ${JSON.stringify(group)}: 1 character or more, none of / + #`);
  return `$share/${group}/${filter}`;
}

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

/** The thing and format of a report topic (under `prefix` instead of `$aws/things/` where a broker republishes
 * them); null for any other topic (a response topic included). */
export function matchReportTopic(topic: string, prefix = PREFIX): { thing: string; format: Format } | null {
  if (!topic.startsWith(prefix)) return null;
  const rest = topic.slice(prefix.length);
  const i = rest.indexOf(MIDDLE);
  if (i < 0) return null; // an empty thing name is matched, to be answered as invalid
  const thing = rest.slice(0, i);
  const format = rest.slice(i + MIDDLE.length);
  if (thing.includes('/') || (format !== 'cbor' && format !== 'json')) return null;
  return { thing, format };
}

/** The prefix under which Detect publishes each thing's alerts, PREFIX/THING, unless told another. */
export const ALERT_PREFIX = 'defender/alerts';

export function alertTopic(thing: string, prefix = ALERT_PREFIX): string {
  return prefix + '/' + thing;
}

/** Whether `topic` is under the default alert prefix. */
export function isAlertTopic(topic: string): boolean {
  return topic.startsWith(ALERT_PREFIX + '/');
}
