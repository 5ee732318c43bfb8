// UTF-8 for device code. Espruino on ESP32 has byte strings (no Unicode support): text there
// is already UTF-8 bytes and is passed through. Node and Unicode builds of Espruino give code
// units, which are encoded here (surrogate pairs joined, lone surrogates as U+FFFD).
// One function does the work (each function costs RAM on Espruino); the others are thin.

/** 1 where a string holds bytes, not code units (Espruino without Unicode support); a number, which costs less
 * RAM than a boolean on Espruino. */
export var byteStrings = String.fromCharCode(256).charCodeAt(0) !== 256 ? 1 : 0;

/** Writes the UTF-8 bytes of s into buf at off, or only counts them when buf is null; returns the offset
 * after them. The caller makes room. No closure and no allocation: the report writer calls it on every report. */
export function utf8Write(s: string, buf: Uint8Array | null, off: number): number;
// parameters from `arguments`: on Espruino a named parameter costs a JsVar for as long as the function exists
export function utf8Write(): number {
  var s: string = arguments[0],
    buf: Uint8Array | null = arguments[1],
    off: number = arguments[2],
    i,
    c,
    d,
    n,
    k;
  if (byteStrings && !buf) return off + s.length;
  for (i = 0; i < s.length; i++) {
    c = s.charCodeAt(i);
    if (!byteStrings && c >= 0xd800 && c < 0xe000) {
      d = s.charCodeAt(i + 1);
      if (c < 0xdc00 && d >= 0xdc00 && d < 0xe000) {
        c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        i++;
      } else c = 0xfffd;
    }
    n = byteStrings || c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
    if (buf) {
      buf[off] = n < 2 ? c : n < 3 ? 0xc0 | (c >> 6) : n < 4 ? 0xe0 | (c >> 12) : 0xf0 | (c >> 18);
      for (k = 1; k < n; k++) buf[off + k] = 0x80 | ((c >> (6 * (n - 1 - k))) & 0x3f);
    }
    off += n;
  }
  return off;
}

/** Number of UTF-8 bytes in s. */
export function utf8Length(s: string): number {
  return utf8Write(s, null, 0);
}

/** The UTF-8 bytes of s as a byte string (each char one byte). Allocates: not for periodic paths. */
export function utf8Encode(s: string): string {
  if (byteStrings) return s;
  var bytes = new Uint8Array(utf8Length(s)),
    out = "",
    i;
  utf8Write(s, bytes, 0);
  for (i = 0; i < bytes.length; i++) out += String.fromCharCode(bytes[i]);
  return out;
}
