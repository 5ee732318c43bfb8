// Declarations the host type check (tsconfig.host.json) needs: the Espruino globals the device sources use that
// Node lacks (tests import the sources too; they test for them with typeof), and the untyped npm package cbor-js.
declare function getTime(): number;
declare var E: { toString(data: Uint8Array | number[] | string): string; toUint8Array(data: string | number[]): Uint8Array; toFlatString(data: string): string | undefined };
declare module 'cbor-js';
