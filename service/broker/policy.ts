// Who may do what on the embedded broker, as an AWS IoT policy for Device Defender gives it: a thing publishes its
// own reports and subscribes to its own answers, nothing else; only the service reads reports and publishes
// answers; an operator reads Detect's alerts and publishes nothing. Pure functions of an identity and a topic;
// embedded.ts wires them into aedes's hooks, and the shipped mosquitto ACL (broker/mosquitto/acl) states the same
// rules for an attached broker. The service's alerts do not pass here: it publishes them in process (embedded.ts).
import { isAlertTopic, matchReportTopic, matchResponseTopic, REPORT_FILTERS } from '../topics.ts';

export type Identity =
  /** The collector itself. */
  | { role: 'service' }
  /** A device: its client id (and, under TLS, its certificate's CN) is its thing name. */
  | { role: 'thing'; thing: string }
  /** A program watching the fleet (a console, a pager bridge): its client id (under TLS, its CN) is one of the
   * service's `operators`. */
  | { role: 'operator' }
  /** Development on loopback: any client id, any topic, except that answers and alerts still come from the service
   * only. */
  | { role: 'open' };

export function mayPublish(who: Identity, topic: string): boolean {
  if (who.role === 'service') return matchResponseTopic(topic) !== null;
  if (who.role === 'operator' || matchResponseTopic(topic)) return false;
  if (who.role === 'open') return !isAlertTopic(topic);
  const report = matchReportTopic(topic);
  return report !== null && report.thing === who.thing;
}

/** Whether a subscription filter may be granted: for a thing, one that can only match its own answer topics (never
 * an alert: a device that could read them would learn that it has been noticed, and what trips a behaviour); for an
 * operator, any filter outside the "$" topics (the devices' reports and answers, the broker's $SYS): where only
 * things and the service publish, that is the alerts, under whatever prefix Detect is given. */
export function maySubscribe(who: Identity, filter: string): boolean {
  if (who.role === 'service') return REPORT_FILTERS.includes(filter);
  if (who.role === 'open') return true;
  if (who.role === 'operator') return !filter.startsWith('$');
  const levels = filter.split('/');
  return (
    levels.length === 7 &&
    levels[0] === '$aws' &&
    levels[1] === 'things' &&
    levels[2] === who.thing &&
    levels[3] === 'defender' &&
    levels[4] === 'metrics' &&
    ['cbor', 'json', '+'].includes(levels[5]) &&
    ['accepted', 'rejected', '+'].includes(levels[6])
  );
}
