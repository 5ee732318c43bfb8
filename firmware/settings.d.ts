// Settings baked into build/firmware.js from espruino.config.json by tools/build.mjs.
declare module "firmware-settings" {
  interface FirmwareSettings {
    ssid: string;
    passwordFile: string;
    endpoint: string;
    mqttPort: number;
    thingName: string;
    period: number;
    minPeriod: number;
    statusLed: string;
    format: "cbor" | "json";
    longTags: boolean;
    slots: number;
    certFile: string;
    keyFile: string;
    caFile: string;
  }
  const settings: FirmwareSettings;
  export default settings;
}
