// Declarations the host type check (tsconfig.host.json) needs: the one Espruino global the device sources use that
// Node lacks (tests import the sources too), and the untyped npm package cbor-js.
declare function getTime(): number;
declare module 'cbor-js';
