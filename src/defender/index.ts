// defender: the Storage module "defender". Public surface only (README: "Metrics core", "Agent API"); the parts
// import each other directly:
//   ring.ts (metrics state, socket hooks) <- track.ts (module wrappers) ; ring.ts -> report.ts (builder and
//   CBOR/JSON writer) ; agent.ts -> report.ts, ring.ts
// Error codes, event types and metrics groups are numbers documented in the README, not exported names: on
// Espruino each exported name costs about 4 JsVars for as long as the module is loaded.
export { track } from "./track";
export { writeReport } from "./report";
export { start, stop, setPeriod, getPeriod, setMetrics, report, strerror } from "./agent";
