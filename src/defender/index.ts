// defender: the Storage module "defender". Public surface only (README: "Metrics core", "Agent API"); the parts
// import each other directly:
//   ring.ts (metrics state) <- track.ts (socket hooks, module wrappers) ; ring.ts, runs.ts (generated) ->
//   report.ts (CBOR/JSON writer) ; agent.ts -> report.ts, ring.ts
// Error codes, event types and metrics groups are numbers documented in the README, not exported names: on
// Espruino each exported name costs about 4 JsVars for as long as the module is loaded.
export { track } from "./track";
export { writeReport } from "./report";
export { start, stop, setPeriod, getPeriod, setMetrics, report, strerror } from "./agent";
