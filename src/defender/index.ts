// defender: the Storage module "defender". Public surface only (README: "Metrics core", "Agent API"); the parts
// import each other directly:
//   ring.ts (metrics state, socket hooks) <- track.ts (module wrappers) ; ring.ts -> report.ts (builder and
//   CBOR/JSON writer) ; agent.ts -> report.ts, ring.ts
export var version = "0.1.0";
export { track } from "./track";
export { writeReport } from "./report";
// The agent. Error codes are exported by name; event types and metrics groups are numbers (README, "Agent
// API"): each exported name costs about 4 JsVars on Espruino.
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
} from "./agent";
