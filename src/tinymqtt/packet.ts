// MQTT 3.1.1 wire constants, as `const enum`s: TypeScript inlines their values, so nothing of them exists on the
// device.

/** Packet types (MQTT 3.1.1, 2.2.1): the high nibble of the fixed header byte. */
export const enum Type {
  CONNECT = 1,
  CONNACK = 2,
  PUBLISH = 3,
  PUBACK = 4,
  SUBSCRIBE = 8,
  SUBACK = 9,
  UNSUBSCRIBE = 10,
  UNSUBACK = 11,
  PINGREQ = 12,
  PINGRESP = 13,
  DISCONNECT = 14,
}

/** Flags in the low nibble of the fixed header byte (2.2.2). SUBSCRIBE and UNSUBSCRIBE always carry QOS1. */
export const enum Flag {
  RETAIN = 1,
  QOS1 = 2,
  QOS_MASK = 6,
  DUP = 8,
}

/** Bits of the CONNECT flags byte (3.1.2.3). */
export const enum Connect {
  USERNAME = 128,
  PASSWORD = 64,
  CLEAN_SESSION = 2,
  /** protocol level 4: MQTT 3.1.1 (3.1.2.2) */
  LEVEL = 4,
}
