// defender: the Storage module "defender". Public surface only; the parts import each other directly:
//   ring.ts (metrics state) <- track.ts (sockets) ; ring.ts -> report.ts (builder) -> writer.ts (CBOR/JSON)
// The agent (agent.ts, issue 5) adds its exports here.
export var version = "0.1.0";
export { track } from "./track";
export { writeReport } from "./report";
export {
  start,
  stop,
  setPeriod,
  getPeriod,
  setMetrics,
  report,
  strerror,
  SUCCESS,
  INVALID_INPUT,
  ALREADY_STARTED,
  PERIOD_TOO_SHORT,
  NO_MEMORY,
  INTERNAL_FAILURE,
  PERIOD_TOO_LONG,
  NOT_STARTED,
  MQTT_FAILURE,
  BUSY,
  METRICS_ACCEPTED,
  METRICS_REJECTED,
  PUBLISH_FAILED,
  SUBSCRIBE_FAILED,
  REPORT_FAILED,
  REPORT_TRUNCATED,
  SLOTS_OVERFLOWED,
  UNEXPECTED_RESPONSE,
  TCP_CONNECTIONS,
  LISTENING_TCP_PORTS,
  LISTENING_UDP_PORTS,
  NETWORK_STATS,
  CUSTOM_METRICS,
  ALL_METRICS,
} from "./agent";
