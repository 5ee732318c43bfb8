// Report writer: CBOR (canonical) or JSON (RFC 8259, UTF-8) straight into a caller-supplied Uint8Array.
//
// Why our own encoder: the npm package cbor-js does not even parse on Espruino (`undefined` as a parameter
// name) and costs 320 JsVars when evaluated from RAM; general-purpose encoders (cbor-x, cborg, ...) build
// objects and arrays per report. This writer allocates nothing per report: no objects, no closures, no
// strings (one exception: a non-integer custom metric number in JSON goes through String(n)).
//
// Internal API (used by report.ts only). Module-level state (wb, wo, ...):
//   wBegin(buf, json)   start a pass: buf null = measure only (offsets advance, nothing is written)
//   wo                bytes so far (after a measure pass: the exact size of the document)
//   wMap(n) / wArr(n)   open a map / array of n entries (CBOR needs n: definite lengths); wEnd(map) closes it (JSON)
//   wKey(s) wStr(s)     a map key / a text value (UTF-8 via src/common/utf8.ts; JSON escapes as needed)
//   wTag(s, from, to)   a map key that is an ASCII slice of s (no substring is made)
//   wNum(n)             a number: integers |n| <= 2^53 exactly (shortest CBOR head, split by division,
//                       never bit operators: Espruino integers are 32-bit), otherwise the shortest exact float
//   wAddr(ip, port)     "a.b.c.d:port" from a 32-bit IPv4 address, written digit by digit
// JSON commas: bit d of wf is set once depth d holds an item; wk suppresses the comma after a key.
import { utf8Length, utf8Write } from "../common/utf8";

/** Writer state, module level (shorter code than an object): buffer (null: measure), offset, JSON?,
 * depth, JSON "has an item" bits per depth, key just written. */
var wb: Uint8Array | null = null,
  wj = false,
  wd = 0,
  wf = 0,
  wk = false;
export var wo = 0;

/** True where strings hold UTF-8 bytes (Espruino without Unicode): bytes >= 0x80 are copied as they are. */
var byteStr = utf8Length(String.fromCharCode(256)) < 2;
/** Scratch for float encoding, created on first use: one 8-byte buffer seen as f32, f64 and bytes. */
var f8: Uint8Array | null = null;
var f32: Float32Array;
var f64: Float64Array;

export function wBegin(buf: Uint8Array | null, json: boolean): void {
  wb = buf;
  wo = 0;
  wj = json;
  wd = 0;
  wf = 0;
  wk = false;
}

function put(c: number): void {
  if (wb) wb[wo] = c;
  wo++;
}

/** n (0 <= n < 2^53) big-endian in len bytes, by division. */
function be(n: number, len: number): void {
  var b = wb;
  for (var i = len - 1; i >= 0; i--) {
    if (b) b[wo + i] = n % 256;
    n = Math.floor(n / 256);
  }
  wo += len;
}

/** CBOR head: major type and argument (0 <= n < 2^53), shortest form. */
function head(major: number, n: number): void {
  var m = major << 5;
  if (n < 24) put(m + n);
  else if (n < 256) {
    put(m + 24);
    put(n);
  } else if (n < 65536) {
    put(m + 25);
    be(n, 2);
  } else if (n < 4294967296) {
    put(m + 26);
    be(n, 4);
  } else {
    put(m + 27);
    be(n, 8);
  }
}

/** JSON: a comma before every item of a map or array but the first (none after a key). */
function sep(): void {
  var bit = 1 << wd;
  if (wk) wk = false;
  else if (wf & bit) put(44);
  wf |= bit;
}

function open(major: number, n: number, ch: number): void {
  if (wj) {
    sep();
    put(ch);
    wd++;
    wf &= ~(1 << wd);
  } else head(major, n);
}

export function wMap(n: number): void {
  open(5, n, 123);
}

export function wArr(n: number): void {
  open(4, n, 91);
}

export function wEnd(map: boolean): void {
  if (wj) {
    wd--;
    put(map ? 125 : 93);
  }
}

function text(s: string): void {
  var n = utf8Length(s);
  if (!wj) {
    head(3, n);
  } else {
    put(34);
    for (var i = 0; i < s.length; i++) {
      var c = s.charCodeAt(i);
      if (c < 32 || c === 34 || c === 92) break;
    }
    if (i < s.length) {
      // Slow path, only for text that needs escaping: one character at a time. Outside ASCII, Unicode
      // strings get \uXXXX escapes (valid JSON for any code unit); byte strings are copied as bytes.
      for (i = 0; i < s.length; i++) {
        c = s.charCodeAt(i);
        if (c === 34 || c === 92) {
          put(92);
          put(c);
        } else if (c < 32 || (c > 126 && !byteStr)) {
          put(92);
          put(117);
          for (var k = 12; k >= 0; k -= 4) put("0123456789abcdef".charCodeAt((c >> k) & 15));
        } else put(c);
      }
      put(34);
      return;
    }
  }
  if (wb) utf8Write(s, wb, wo);
  wo += n;
  if (wj) put(34);
}

export function wKey(s: string): void {
  if (wj) {
    sep();
    text(s);
    put(58);
    wk = true;
  } else text(s);
}

/** A map key that is the ASCII slice s[from, to) (the report's tag names, kept in one string). */
export function wTag(s: string, from: number, to: number): void {
  if (wj) {
    sep();
    put(34);
  } else head(3, to - from);
  while (from < to) put(s.charCodeAt(from++));
  if (wj) {
    put(34);
    put(58);
    wk = true;
  }
}

export function wStr(s: string): void {
  if (wj) sep();
  text(s);
}

/** Decimal digits of 0 <= n < 2^53, by division. */
function digits(n: number): void {
  var len = 1;
  for (var t = n; t >= 10; t = Math.floor(t / 10)) len++;
  var b = wb;
  for (var i = len - 1; i >= 0; i--) {
    if (b) b[wo + i] = 48 + (n % 10);
    n = Math.floor(n / 10);
  }
  wo += len;
}

/** Half-float bits of v when v is exactly a binary16 value, else -1. */
function half(v: number): number {
  var s = v < 0 ? 0x8000 : 0;
  var a = v < 0 ? -v : v;
  if (a >= 65520) return -1;
  if (a < 6.103515625e-5) {
    var m = a * 16777216;
    return m % 1 === 0 ? s + m : -1;
  }
  var e = 0;
  while (a >= 2) {
    a /= 2;
    e++;
  }
  while (a < 1) {
    a *= 2;
    e--;
  }
  m = a * 1024;
  return m % 1 === 0 ? s + (e + 15) * 1024 + m - 1024 : -1;
}

/** A number: integer (|n| <= 2^53) exactly, else the shortest float that holds it exactly (CBOR). */
export function wNum(n: number): void {
  var int = n % 1 === 0 && n <= 9007199254740992 && n >= -9007199254740992;
  if (wj) {
    sep();
    if (!int) {
      text2(String(n));
      return;
    }
    if (n < 0) {
      put(45);
      n = -n;
    }
    digits(n);
    return;
  }
  if (int) {
    if (n < 0) head(1, -1 - n);
    else head(0, n);
    return;
  }
  var h = half(n);
  if (h >= 0) {
    put(0xf9);
    be(h, 2);
    return;
  }
  if (!f8) {
    f8 = new Uint8Array(8);
    f32 = new Float32Array(f8.buffer);
    f64 = new Float64Array(f8.buffer);
  }
  f32[0] = n;
  var size = f32[0] === n ? 4 : 8;
  if (size > 4) f64[0] = n;
  put(size > 4 ? 0xfb : 0xfa);
  // typed arrays are little-endian on every target (x86, ARM, Xtensa)
  for (var i = size - 1; i >= 0; i--) put(f8[i]);
}

/** ASCII text without quotes (a number's JSON form). */
function text2(s: string): void {
  for (var i = 0; i < s.length; i++) put(s.charCodeAt(i));
}

/** "a.b.c.d:port" as a text value; ip is the address as a 32-bit unsigned number (a.b.c.d = a*2^24+...). */
export function wAddr(ip: number, port: number): void {
  var len = 1 + 3 + dl(port);
  for (var k = 3; k >= 0; k--) len += dl(Math.floor(ip / Math.pow(256, k)) % 256);
  if (wj) {
    sep();
    put(34);
  } else head(3, len);
  for (k = 3; k >= 0; k--) {
    digits(Math.floor(ip / Math.pow(256, k)) % 256);
    put(k ? 46 : 58);
  }
  digits(port);
  if (wj) put(34);
}

/** Number of decimal digits of 0 <= n < 65536. */
function dl(n: number): number {
  return n < 10 ? 1 : n < 100 ? 2 : n < 1000 ? 3 : n < 10000 ? 4 : 5;
}
