// Reads and validates espruino.config.json against espruino.config.schema.json. An error is one line that names the
// field and what it may be, taken from the schema.
import Ajv from 'ajv';
import { readFileSync } from 'node:fs';
import { dirname, join, basename } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const schema = JSON.parse(readFileSync(join(root, 'espruino.config.schema.json'), 'utf8'));
// "allowed": the schema's own words for what a pattern accepts, quoted in the error.
const validate = new Ajv({ allErrors: false, strict: true }).addKeyword({ keyword: 'allowed', schemaType: 'string' }).compile(schema);

/** The schema of the field at `path` (names), following $ref. */
function fieldSchema(path) {
  let node = schema;
  for (const name of path) {
    node = node?.properties?.[name];
    if (node?.$ref) node = { ...schema.definitions[node.$ref.split('/').pop()], ...node };
  }
  return node ?? {};
}

const KINDS = { integer: 'a whole number', number: 'a number', string: 'a string', boolean: 'true or false', object: 'an object', array: 'a list' };

/** One line for an ajv error: the field's name, what it may be (from the schema: one source of truth), what it is. */
function explain(e, config) {
  const path = e.instancePath.split('/').slice(1);
  const extra = e.params.missingProperty ?? e.params.additionalProperty;
  const fieldPath = extra === undefined ? path : [...path, extra];
  const field = fieldPath.join('.') || '(top level)';
  const f = fieldSchema(fieldPath);
  const got = JSON.stringify(path.reduce((o, k) => o?.[k], config));
  const about = f.description ? ` (${f.description.replace(/\.$/, '')})` : '';
  switch (e.keyword) {
    case 'required':
      return `field ${field} is missing${about}`;
    case 'additionalProperties':
      return `field ${field} is not a setting; the settings here are ${Object.keys(fieldSchema(path).properties ?? {}).filter((k) => k !== '$schema').join(', ')}`;
    case 'enum':
      return `field ${field} must be one of ${e.params.allowedValues.map((v) => JSON.stringify(v)).join(', ')}, not ${got}`;
    case 'type':
      return `field ${field} must be ${KINDS[e.params.type] ?? e.params.type}, not ${got}`;
    case 'minimum':
    case 'maximum':
      return `field ${field} must be from ${f.minimum} to ${f.maximum}, not ${got}`;
    case 'minLength':
    case 'maxLength':
      return `field ${field} must be ${f.minLength ?? 0} to ${f.maxLength ?? 'any number of'} characters, not ${got}`;
    case 'pattern':
      return `field ${field} must be ${f.allowed ?? `text matching ${f.pattern}`}, not ${got}`;
    default:
      return `field ${field} ${e.message}`;
  }
}

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
  if (!validate(config)) throw new Error(`${basename(path)}: ${explain(validate.errors[0], config)}`);
  const minPeriod = config.minPeriod ?? defaults.minPeriod;
  if ((config.period ?? defaults.period) < minPeriod) throw new Error(`${basename(path)}: field period must be from minPeriod (${minPeriod}) to 86400, not ${config.period}`);
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
