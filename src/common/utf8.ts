// UTF-8 for device code. Espruino on ESP32 has byte strings (no Unicode support): text there
// is already UTF-8 bytes and is passed through. Node and Unicode builds of Espruino give code
// units, which are encoded here (surrogate pairs joined, lone surrogates as U+FFFD).

/** True where a string holds bytes, not code units (Espruino without Unicode support). */
var byteStrings = String.fromCharCode(256).charCodeAt(0) !== 256;

/** Code point at i (joining a surrogate pair), or -1 past the end. */
function codePointAt(s: string, i: number): number {
  var c = s.charCodeAt(i);
  if (c !== c) return -1;
  if (c >= 0xd800 && c < 0xdc00) {
    var d = s.charCodeAt(i + 1);
    if (d >= 0xdc00 && d < 0xe000) return 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
    return 0xfffd;
  }
  return c >= 0xdc00 && c < 0xe000 ? 0xfffd : c;
}

function seqLength(cp: number): number {
  return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
}

/** Number of UTF-8 bytes in s. */
export function utf8Length(s: string): number {
  if (byteStrings) return s.length;
  var n = 0;
  for (var i = 0; i < s.length; i++) {
    var cp = codePointAt(s, i);
    if (cp > 0xffff) i++;
    n += seqLength(cp);
  }
  return n;
}

/** Writes the UTF-8 bytes of s into buf at off; returns the offset after them. The caller makes
 * room (utf8Length). No closure and no allocation: the report writer calls it on every report. */
export function utf8Write(s: string, buf: Uint8Array, off: number): number {
  for (var i = 0; i < s.length; i++) {
    var cp = byteStrings ? s.charCodeAt(i) : codePointAt(s, i);
    if (byteStrings || cp < 0x80) {
      buf[off++] = cp;
      continue;
    }
    if (cp > 0xffff) i++;
    var n = seqLength(cp);
    buf[off++] = n === 2 ? 0xc0 | (cp >> 6) : n === 3 ? 0xe0 | (cp >> 12) : 0xf0 | (cp >> 18);
    for (var k = n - 2; k >= 0; k--) buf[off++] = 0x80 | ((cp >> (6 * k)) & 0x3f);
  }
  return off;
}

/** The UTF-8 bytes of s as a byte string (each char one byte). Allocates: not for periodic paths. */
export function utf8Encode(s: string): string {
  if (byteStrings) return s;
  var bytes = new Uint8Array(utf8Length(s));
  utf8Write(s, bytes, 0);
  var out = "";
  for (var i = 0; i < bytes.length; i++) out += String.fromCharCode(bytes[i]);
  return out;
}
