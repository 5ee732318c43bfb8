// defender: the Storage module "defender". Public surface only; the parts import each other directly:
//   ring.ts (metrics state) <- track.ts (sockets) ; ring.ts -> report.ts (builder) -> writer.ts (CBOR/JSON)
// The agent (agent.ts, issue 5) adds its exports here.
export var version = "0.1.0";
export { track } from "./track";
export { writeReport } from "./report";
