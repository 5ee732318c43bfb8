// Report writer: CBOR (canonical) or JSON (RFC 8259, UTF-8) straight into a caller-supplied Uint8Array.
//
// Why our own encoder: the npm package cbor-js does not even parse on Espruino (`undefined` as a parameter
// name) and costs 320 JsVars when evaluated from RAM; general-purpose encoders (cbor-x, cborg, ...) build
// objects and arrays per report. This writer allocates nothing per report: no objects, no closures, no
// strings (one exception: a non-integer custom metric number in JSON goes through String(n)).
//
// Internal API (used by report.ts only). Module-level state:
//   wBegin(buf, json)   start a pass. Every byte is counted in wo, also past the end of buf (typed arrays
//                       drop such writes): after a pass wo is the exact size of the document, written in full
//                       when it fits.
//   wo                  bytes so far
//   wOpen(map, n)       open a map (map true) or array of n entries (CBOR needs n: definite lengths);
//                       wEnd(map) closes it (JSON)
//   wStr(s, key)        a text value, or a map key (key true); UTF-8 via src/common/utf8.ts, JSON escaped
//   wTag(s, from, to)   a map key that is the ASCII slice s[from, to) of at most 23 characters (no substring)
//   wNum(n)             a number: integers |n| <= 2^53 exactly (shortest CBOR head, split by division, never
//                       bit operators: Espruino integers are 32-bit), other numbers as CBOR float64 (0xfb)
//   wAddr(ip, port)     "a.b.c.d:port" from an IPv4 address as a 32-bit integer, written digit by digit
// JSON commas: an item gets one unless the byte before it opens a map or array or ends a key ("{", "[", ":").
import { utf8Length, utf8Write } from "../common/utf8";

/** Buffer, JSON? */
var wb: Uint8Array,
  wj = false;
export var wo = 0;

/** True where strings hold UTF-8 bytes (Espruino without Unicode): bytes >= 0x80 are copied as they are. */
var byteStr = utf8Length(String.fromCharCode(256)) < 2;
/** Scratch for float64: one 8-byte buffer seen as a double and as bytes. */
var f8 = new Uint8Array(8),
  f64 = new Float64Array(f8.buffer);

export function wBegin(buf: Uint8Array, json: boolean): void {
  wb = buf;
  wj = json;
  wo = 0;
}

function put(c: number): void {
  wb[wo++] = c;
}

/** CBOR head: major type m and argument n (0 <= n < 2^53), shortest form, big-endian by division. */
function head(m: number, n: number): void {
  if (n < 24) return put(m * 32 + n);
  var l = n < 256 ? 0 : n < 65536 ? 1 : n < 4294967296 ? 2 : 3;
  put(m * 32 + 24 + l);
  l = 1 << l;
  wo += l;
  for (var i = wo; l--; n = (n - (n % 256)) / 256) wb[--i] = n % 256;
}

/** JSON: a comma before every item of a map or array but the first (none after a key). */
function sep(): void {
  var c = wo ? wb[wo - 1] : 0; // wb[-1] throws on Espruino
  if (wo && c !== 123 && c !== 91 && c !== 58) put(44);
}

export function wOpen(map: boolean, n: number): void {
  if (wj) {
    sep();
    put(map ? 123 : 91);
  } else head(map ? 5 : 4, n);
}

export function wEnd(map: boolean): void {
  if (wj) put(map ? 125 : 93);
}

export function wStr(s: string, key?: boolean): void {
  if (!wj) {
    head(3, utf8Length(s));
    wo = utf8Write(s, wb, wo);
    return;
  }
  sep();
  put(34);
  // Outside ASCII, Unicode strings get \uXXXX escapes (valid JSON for any code unit); byte strings are
  // copied as bytes.
  for (var i = 0; i < s.length; i++) {
    var c = s.charCodeAt(i);
    if (c === 34 || c === 92) put(92);
    if (c < 32 || (c > 126 && !byteStr)) {
      put(92);
      put(117);
      for (var k = 12; k >= 0; k -= 4) {
        var x = (c >> k) & 15;
        put(x + (x < 10 ? 48 : 87));
      }
    } else put(c);
  }
  put(34);
  if (key) put(58);
}

/** A map key that is the ASCII slice s[from, to) (the report's tag names, kept in one string). */
export function wTag(s: string, from: number, to: number): void {
  if (wj) {
    sep();
    put(34);
  } else put(96 + to - from);
  while (from < to) put(s.charCodeAt(from++));
  if (wj) {
    put(34);
    put(58);
  }
}

/** Decimal digits of 0 <= n < 2^53, by exact division. */
function digits(n: number): void {
  var p, i, r;
  for (p = 10; p <= n; p *= 10) wo++;
  i = ++wo;
  do {
    r = n % 10;
    wb[--i] = 48 + r;
    n = (n - r) / 10;
  } while (n > 0);
}

export function wNum(n: number): void {
  // every var declared up front: Espruino does not hoist var, and the minifier may reorder the branches
  var int = n % 1 === 0 && n <= 9007199254740992 && n >= -9007199254740992,
    i,
    s;
  if (!wj) {
    if (int) return n < 0 ? head(1, -1 - n) : head(0, n);
    put(0xfb);
    f64[0] = n;
    // typed arrays are little-endian on every target (x86, ARM, Xtensa)
    for (i = 8; i--; ) put(f8[i]);
    return;
  }
  sep();
  if (!int) {
    s = String(n);
    for (i = 0; i < s.length; i++) put(s.charCodeAt(i));
    return;
  }
  if (n < 0) {
    put(45);
    n = -n;
  }
  digits(n);
}

/** "a.b.c.d:port" as a text value (at most 21 characters: a one-byte CBOR head, set once the length is known). */
export function wAddr(ip: number, port: number): void {
  if (wj) sep();
  var at = wo;
  put(34);
  for (var k = 24; k >= 0; k -= 8) {
    digits((ip >> k) & 255);
    put(k ? 46 : 58);
  }
  digits(port);
  if (wj) put(34);
  else wb[at] = 95 + wo - at;
}
