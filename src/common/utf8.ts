// Strings on the device: Espruino on ESP32 has byte strings (no Unicode support), so text there is already
// UTF-8 bytes and is passed through; Node and Unicode builds of Espruino give code units, which the writer
// encodes (report.ts) and the socket tracker counts in UTF-8 bytes (track.ts).

/** 1 where a string holds bytes, not code units (Espruino without Unicode support); a number, which costs less
 * RAM than a boolean on Espruino. */
export var byteStrings = String.fromCharCode(256).charCodeAt(0) !== 256 ? 1 : 0;
