// Reads and validates espruino.config.json against espruino.config.schema.json.
import Ajv from 'ajv';
import { readFileSync } from 'node:fs';
import { dirname, join, basename } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const schema = JSON.parse(readFileSync(join(root, 'espruino.config.schema.json'), 'utf8'));
const validate = new Ajv({ allErrors: false, strict: true }).compile(schema);

/** Defaults for the optional settings. */
export const defaults = {
  mqttPort: 8883,
  period: 300,
  minPeriod: 300,
  statusLed: '',
  format: 'cbor',
  longTags: false,
  slots: 8,
  wifi: { passwordFile: 'wifi.pass' },
  tls: { certFile: 'device.crt', keyFile: 'device.key', caFile: 'ca.crt' },
};

/** Loads the config file, throwing an Error that names the bad field. */
export function loadConfig(path = join(root, 'espruino.config.json')) {
  let config;
  try {
    config = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new Error(`${basename(path)}: ${err.message}`);
  }
  if (!validate(config) || config.period < (config.minPeriod ?? defaults.minPeriod)) {
    if (!validate.errors) throw new Error(`${basename(path)}: field period must be >= minPeriod (${config.minPeriod ?? defaults.minPeriod})`);
    const e = validate.errors[0];
    const field = (e.instancePath || '/').replace(/^\//, '').replace(/\//g, '.') || '(top level)';
    const extra = e.params && e.params.additionalProperty ? ` (${e.params.additionalProperty})` : '';
    const missing = e.params && e.params.missingProperty ? ` (${e.params.missingProperty})` : '';
    throw new Error(`${basename(path)}: field ${field}${extra}${missing} ${e.message}`);
  }
  return {
    ...defaults,
    ...config,
    wifi: { ...defaults.wifi, ...config.wifi },
    tls: { ...defaults.tls, ...config.tls },
  };
}

/** The part of the config that the firmware needs at run time (no port or baud, no secrets). */
export function firmwareSettings(config) {
  return {
    ssid: config.wifi.ssid,
    passwordFile: config.wifi.passwordFile,
    endpoint: config.endpoint,
    mqttPort: config.mqttPort,
    thingName: config.thingName,
    period: config.period,
    minPeriod: config.minPeriod,
    statusLed: config.statusLed,
    format: config.format,
    longTags: config.longTags,
    slots: config.slots,
    certFile: config.tls.certFile,
    keyFile: config.tls.keyFile,
    caFile: config.tls.caFile,
  };
}
