// Writes src/defender/runs.ts: the constant runs of the report document (keys with their container heads, the
// version), encoded once here for each format and tag style from the tag table in src/common/spec.ts, so that
// the device neither holds nor builds them (on Espruino a string made at run time costs RAM, and building it
// costs time at every report). `npm run runs` rewrites the file; test/metrics/runs.test.ts fails when it is
// out of date with the table or with this recipe.
//
// The default style's runs are constants the writer puts in place (Short). Every style's runs are also in one
// text (Text.ALL) that the device reads where it lies, in flash, a run at a time (src/defender/report.ts):
// printable ASCII without a quote or backslash, so that the bundle holds it byte for byte; CBOR runs (bytes
// outside ASCII) in base64, each run on its own; and in front, per style, where each run starts.
//
//   node --import=tsx tools/runs.ts
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tagNames } from '../src/common/spec.ts';

/**
 * What each run holds, in the writer's order (its name becomes a member of `const enum Run`): long tag names (a
 * key, written in the style asked for), "{N" and "[N" (a map or array of N entries), "=text" (a text value), and
 * "," and "}" (JSON only). The writer puts the separators between optional parts and list entries.
 */
export const recipes: [string, string][] = [
  ['HEADER', 'header {2 version =1.0 , report_id'],
  ['METRICS', '} , metrics'],
  ['BYTES_IN', 'network_stats {4 bytes_in'],
  ['BYTES_OUT', ', bytes_out'],
  ['PACKETS_IN', ', packets_in'],
  ['PACKETS_OUT', ', packets_out'],
  ['TCP', 'tcp_connections {1 established_connections'],
  ['TOTAL', 'total'],
  ['CONNECTIONS', 'connections'],
  ['CONNECTION', '{1 remote_addr'],
  ['CONNECTION_LOCAL', '{2 local_port'],
  ['REMOTE_ADDR', ', remote_addr'],
  ['TCP_PORTS', 'listening_tcp_ports'],
  ['UDP_PORTS', 'listening_udp_ports'],
  ['PORTS', 'ports'],
  ['PORT', '{1 port'],
  ['CUSTOM', ', custom_metrics'],
  ['NUMBER', '[1 {1 number'],
  ['NUMBER_LIST', '[1 {1 number_list'],
  ['STRING_LIST', '[1 {1 string_list'],
  ['IP_LIST', '[1 {1 ip_list'],
];

/** Where the writer puts the key order of the tag table as fixed: each pair, in canonical order (RFC 8949: the
 * shorter key first, then bytewise) in both tag styles. An edit of the table that breaks one fails here. */
const fixedOrder = [
  ['version', 'report_id'],
  ['header', 'metrics'],
  ['metrics', 'custom_metrics'],
  ['bytes_in', 'bytes_out'],
  ['bytes_out', 'packets_in'],
  ['packets_in', 'packets_out'],
  ['network_stats', 'tcp_connections'],
  ['tcp_connections', 'listening_tcp_ports'],
  ['listening_tcp_ports', 'listening_udp_ports'],
  ['total', 'connections'],
  ['local_port', 'remote_addr'],
];

/** Long tag -> short tag, from the tag table. */
const shortNames = new Map(tagNames().split(',').map((pair) => pair.split(' ') as [string, string]));

/** A tag's name in a tag style (long: the tag itself; short: its short name in the table). */
function tagName(tag: string, long: boolean): string {
  const short = shortNames.get(tag);
  if (short === undefined) throw new Error(`tools/runs.ts: "${tag}" is not in the tag table`);
  return long ? tag : short;
}

/** Canonical order of two keys (RFC 8949: the shorter first, then bytewise). */
function sortsBefore(x: string, y: string): boolean {
  return x.length < y.length || (x.length === y.length && x < y);
}

/** Whether "total" sorts before "ports" (the keys of both port maps) in a tag style: canonical CBOR order, which
 * the JSON writer follows too. The writer takes it from here rather than comparing the runs at every report. */
export function totalFirst(long: boolean): number {
  return sortsBefore(tagName('total', long), tagName('ports', long)) ? 1 : 0;
}

/** The runs of one format and tag style as one byte string, runs separated by NUL (no run holds one). */
export function encodeRuns(json: boolean, long: boolean): string {
  const name = (tag: string) => tagName(tag, long);
  for (const [a, b] of fixedOrder) {
    const [x, y] = [name(a), name(b)];
    if (!sortsBefore(x, y)) throw new Error(`tools/runs.ts: "${x}" no longer sorts before "${y}"`);
  }
  return recipes
    .map(([, recipe]) =>
      recipe
        .split(' ')
        .filter(Boolean)
        .map((item) => {
          const c = item.charAt(0);
          if (c === ',' || c === '}') return json ? c : '';
          if (c === '{' || c === '[') return json ? c : String.fromCharCode((c === '{' ? 0xa0 : 0x80) + Number(item.slice(1)));
          const text = c === '=' ? item.slice(1) : name(item);
          if (text.length > 23) throw new Error(`tools/runs.ts: "${text}" needs a longer CBOR head than the writer assumes`);
          return json ? `"${text}"${c === '=' ? '' : ':'}` : String.fromCharCode(0x60 + text.length) + text;
        })
        .join(''),
    )
    .join('\0');
}

/** A string literal with every byte outside printable ASCII as \xNN. */
function literal(s: string): string {
  let out = '"';
  for (const ch of s) {
    const c = ch.charCodeAt(0);
    if (ch === '"' || ch === '\\') out += '\\' + ch;
    else if (c < 0x20 || c > 0x7e) out += '\\x' + c.toString(16).padStart(2, '0');
    else out += ch;
  }
  return out + '"';
}

/** A style's place among the offsets of Text.ALL: (json ? STYLE_JSON : 0) + (longTags ? STYLE_LONG : 0). */
const STYLE_LONG = 1,
  STYLE_JSON = 2;
const styles = [0, 1, 2, 3].map((place) => [(place & STYLE_JSON) !== 0, (place & STYLE_LONG) !== 0]);

/** An offset in Text.ALL is two characters, its digits in base OFFSET_BASE from OFFSET_ZERO: "(" to "Y", neither
 * a quote nor a backslash. */
const OFFSET_ZERO = 40,
  OFFSET_BASE = 50;

/** Text.ALL: per style, where each run starts and where the last ends (RUNS + 1 offsets, counted from the text's
 * first character); then the runs, JSON ones as they are, CBOR ones each in base64. */
export function allRuns(): string {
  const pieces = styles.map(([json, long]) => encodeRuns(json, long).split('\0').map((run) => (json ? run : Buffer.from(run, 'latin1').toString('base64'))));
  const offsetsLength = styles.length * (recipes.length + 1) * 2;
  let at = offsetsLength,
    offsets = '',
    runs = '';
  for (const style of pieces) {
    for (const run of style) {
      offsets += offset(at);
      at += run.length;
      runs += run;
    }
    offsets += offset(at);
  }
  const text = offsets + runs;
  if (/['\\]|[^\x20-\x7e]/.test(text)) throw new Error('tools/runs.ts: the runs need a quote, a backslash or a byte outside printable ASCII');
  return text;
}

/** The two characters of an offset. */
function offset(at: number): string {
  if (at >= OFFSET_BASE * OFFSET_BASE) throw new Error('tools/runs.ts: the runs are too long for two-character offsets');
  return String.fromCharCode(OFFSET_ZERO + Math.floor(at / OFFSET_BASE), OFFSET_ZERO + (at % OFFSET_BASE));
}

/** The members of a const enum of CBOR's runs in a tag style, one per run, for the writer to put in place. */
function cborMembers(long: boolean): string {
  return encodeRuns(false, long)
    .split('\0')
    .map((run, i) => `  ${recipes[i][0]} = ${literal(run)},`)
    .join('\n');
}

export function generate(): string {
  const all = allRuns();
  return `// Generated by \`npm run runs\` (tools/runs.ts) from the tag table in src/common/spec.ts: do not edit.
// The constant runs of the report document for each format and tag style (tools/runs.ts says what each holds),
// as string constants that TypeScript writes into the code where they are used.

/** The runs, in order. */
export const enum Run {
${recipes.map(([name], i) => `  ${name} = ${i},`).join('\n')}
}

/** Every style's runs in one text, read a run at a time where it lies (flash on the device): per style
 * (Style), RUNS + 1 offsets, counted from the text's first character, of two characters each (the offset is
 * OFFSET_BASE * (first - OFFSET_ZERO) + (second - OFFSET_ZERO), of their character codes); then the runs, CBOR
 * ones in base64. */
export const enum Text {
  ALL = ${literal(all)},
  LENGTH = ${all.length},
  OFFSETS = ${(recipes.length + 1) * 2}, // characters of offsets per style
  OFFSET_ZERO = ${OFFSET_ZERO},
  OFFSET_BASE = ${OFFSET_BASE},
}

/** A style's place in Text: (json ? JSON : 0) + (longTags ? LONG : 0). */
export const enum Style {
  LONG = ${STYLE_LONG},
  JSON = ${STYLE_JSON},
}

/** The runs of the default style (CBOR, short tags) one by one: the writer puts them in place, so that the
 * default style's report splits no string into an array (21 strings: 54 JsVars while it is written). */
export const enum Short {
${cborMembers(false)}
}

/** The runs of CBOR with long tags, put in place the same way: CBOR is the format with a speed target (issue 11),
 * and a run read from Text costs a call, a substring and atob. */
export const enum Long {
${cborMembers(true)}
}

/** 1 when "total" comes before "ports" in the port maps, per tag style. */
export const enum TotalFirst {
  SHORT = ${totalFirst(false)},
  LONG = ${totalFirst(true)},
}
`;
}

export const runsFile = join(import.meta.dirname, '..', 'src', 'defender', 'runs.ts');

if (process.argv[1] === import.meta.filename) writeFileSync(runsFile, generate());
