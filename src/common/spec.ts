// The facts of the AWS IoT Device Defender metrics document that the device's report writer (src/defender/
// report.ts) and the service's validator (service/validate.ts) share, in one place (docs/report-format.md):
//   tagNames()            the (long, short) tag names
//   customMetricError()   the custom-metric rules: why AWS refuses a metric, or "" when it takes it
//   MAX_LIST              entries per list
// Device code (ES5, Espruino): tagNames() keeps the table in a function, so no string stays in RAM between
// reports; the rules use no regex group, alternation or {n,m} (Espruino's regex has none of them).
//
// Sources (AWS IoT Device Defender developer guide and API reference):
//   tags: https://docs.aws.amazon.com/iot-device-defender/latest/devguide/detect-device-side-metrics.html
//   metric names: https://docs.aws.amazon.com/iot/latest/apireference/API_CreateCustomMetric.html
//   values (Double, list of doubles, strings): https://docs.aws.amazon.com/iot/latest/apireference/API_MetricValue.html
import { byteStrings } from "./utf8";

export const enum Limit {
  /** Entries per list. The guide states no number; AWS's own agent (Python SDK) sends at most 50, as we do. */
  LIST = 50,
}
/** Limit.LIST, for host code. */
export var MAX_LIST = Limit.LIST;

/**
 * The tag table: "long short" pairs separated by commas. A custom metric's value kinds have no short name (the
 * long one is used in both styles). Adding a metric: a pair here, then where the writer writes it and where the
 * validator checks it (both look names up here).
 */
export function tagNames(): string {
  return (
    "header hed,report_id rid,version v,metrics met," +
    "tcp_connections tc,established_connections ec,connections cs,remote_addr rad,local_port lp,local_interface li," +
    "total t,listening_tcp_ports tp,listening_udp_ports up,ports pts,port pt,interface if," +
    "network_stats ns,bytes_in bi,bytes_out bo,packets_in pi,packets_out po," +
    "custom_metrics cmet,number number,number_list number_list,string_list string_list,ip_list ip_list"
  );
}

/**
 * Why AWS refuses custom metric `name` with `value` ({number: n} | {number_list: [n..]} | {string_list: [s..]} |
 * {ip_list: [s..]}, exactly one key), or "" when it takes it. The rules (docs/report-format.md):
 *   name    1 to 128 bytes of [a-zA-Z0-9:_-] (ASCII only, so bytes and characters agree), not starting with "aws:"
 *   number  a finite number: AWS keeps a Double (NaN and the infinities have no JSON form either)
 *   lists   at most MAX_LIST entries
 *   string  well-formed text: no lone surrogate (Unicode strings), valid UTF-8 (byte strings: Espruino on ESP32)
 *   ip      an IPv4 address (dotted decimal, no leading zero) or an IPv6 address (RFC 4291 text, no zone)
 * A value of another shape is refused too. Values are checked as given: the service turns a CBOR integer beyond
 * 2^53 (a bigint from its decoder) into a number only when a Double holds it exactly.
 * One function, its helpers nested: on Espruino a nested function costs nothing until the call, and the writer
 * calls it only for reports with custom metrics.
 */
export function customMetricError(name: string, value: any): string;
// parameters from `arguments` (on Espruino a named parameter costs a JsVar while the function exists); the nested
// helpers take named ones (Espruino 2v29 would give them this function's `arguments`)
export function customMetricError(): string {
  var name: string = arguments[0],
    value: any = arguments[1],
    kind: any,
    list,
    i,
    k,
    v,
    n;
  function isIPv4(s: string): boolean {
    var parts = s.split("."),
      i;
    if (parts.length !== 4) return false;
    // decimal 0..255 without a leading zero, sign or space: its own shortest text
    for (i = 0; i < 4; i++) if (!(String(+parts[i]) === parts[i] && +parts[i] >= 0 && +parts[i] <= 255)) return false;
    return true;
  }
  /** IPv4, or IPv6 as node:net isIP takes it but with no zone ("%eth0"). */
  function isIpAddress(s: string): boolean {
    var halves, groups, i, j, n, last;
    if (isIPv4(s)) return true;
    halves = s.split("::");
    if (halves.length > 2) return false;
    n = 0;
    for (i = 0; i < halves.length; i++) {
      if (!halves[i]) continue;
      groups = halves[i].split(":");
      for (j = 0; j < groups.length; j++) {
        last = i === halves.length - 1 && j === groups.length - 1;
        if (last && groups[j].indexOf(".") >= 0) {
          if (!isIPv4(groups[j])) return false;
          n += 2;
        } else if (groups[j].length < 5 && /^[0-9a-fA-F]+$/.test(groups[j])) n++;
        else return false;
      }
    }
    return halves.length > 1 ? n < 8 : n === 8;
  }
  /** Text that has UTF-8 bytes: no lone surrogate in a Unicode string; valid UTF-8 in a byte string. */
  function wellFormed(s: string): boolean {
    var i, c, more, min, cp;
    for (i = 0; i < s.length; i++) {
      c = s.charCodeAt(i);
      if (!byteStrings) {
        if (c >= 0xd800 && c < 0xdc00) {
          c = s.charCodeAt(++i); // NaN past the end
          if (!(c >= 0xdc00 && c < 0xe000)) return false;
        } else if (c >= 0xdc00 && c < 0xe000) return false;
      } else if (c >= 0x80) {
        more = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : c >= 0xc0 ? 1 : 0;
        if (!more || c > 0xf4) return false;
        min = more === 1 ? 0x80 : more === 2 ? 0x800 : 0x10000;
        cp = c & (0x3f >> more);
        for (; more; more--) {
          c = s.charCodeAt(++i);
          if (!(c >= 0x80 && c < 0xc0)) return false;
          cp = cp * 64 + (c & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp < 0xe000)) return false;
      }
    }
    return true;
  }
  if (typeof name !== "string" || !name || name.length > 128 || !/^[a-zA-Z0-9:_-]+$/.test(name)) return "bad name";
  if (name.indexOf("aws:") === 0) return "name starts with aws:";
  n = 0;
  if (value && typeof value === "object") for (k in value) (kind = k), n++;
  if (n !== 1 || !(kind === "number" || kind === "number_list" || kind === "string_list" || kind === "ip_list")) {
    return "not one of number, number_list, string_list, ip_list";
  }
  list = kind === "number" ? [value.number] : value[kind];
  if (!list || typeof list !== "object" || typeof list.length !== "number") return "not a list";
  if (list.length > Limit.LIST) return "more than " + Limit.LIST + " entries";
  for (i = 0; i < list.length; i++) {
    v = list[i];
    if (kind === "number" || kind === "number_list") {
      if (typeof v !== "number" || !isFinite(v)) return "not a finite number";
    } else if (typeof v !== "string") return "not a string";
    else if (kind === "ip_list" ? !isIpAddress(v) : !wellFormed(v)) return kind === "ip_list" ? "not an IP address" : "not well-formed text";
  }
  return "";
}
