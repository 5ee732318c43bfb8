// MQTT 3.1.1 packet codec, pure: packets are byte strings (one char per byte), which is what Espruino's
// sockets read and write. Encoders build whole packets; frame() finds where the packet at the start of
// a receive buffer ends, so the client can parse a stream incrementally.

/** Fixed header byte of a packet type (MQTT 3.1.1, 2.2.1), with the flags a client sends. */
export var CONNECT = 0x10,
  PUBLISH = 0x30,
  PUBACK = 0x40,
  SUBSCRIBE = 0x82,
  UNSUBSCRIBE = 0xa2,
  PINGREQ = 0xc0,
  DISCONNECT = 0xe0;

/** Bytes as a byte string (String.fromCharCode, named once: it is used everywhere). */
export var chr = String.fromCharCode;

/** Two-byte big-endian integer. */
export function u16(n: number): string {
  return chr(n >> 8, n & 255);
}

/** A length-prefixed string (topic, client id, ...), already bytes. */
export function str(s: string): string {
  return u16(s.length) + s;
}

/** A whole packet: fixed header byte, remaining length (1 to 4 bytes, 7 bits each), body. */
export function packet(header: number, body: string): string {
  var n = body.length,
    s = "";
  do {
    var b = n % 128;
    n = Math.floor(n / 128);
    s += chr(n ? b | 128 : b);
  } while (n);
  return chr(header) + s + body;
}

/** Bytes of the fixed header of the last packet frame() found. */
export var head = 0;

/** Total length of the packet at the start of buf: 0 while more bytes are needed, -1 when the remaining
 * length is malformed (a fifth length byte), -2 when the packet is longer than max bytes (known as soon as
 * its header is, so the buffer never holds more than max plus one data event). */
export function frame(buf: string, max: number): number {
  var n = 0,
    m = 1,
    i = 1,
    b;
  do {
    if (i > 4) return -1;
    if (i >= buf.length) return 0;
    b = buf.charCodeAt(i++);
    n += (b & 127) * m;
    m *= 128;
  } while (b & 128);
  head = i;
  n += i;
  return n > max ? -2 : n > buf.length ? 0 : n;
}
