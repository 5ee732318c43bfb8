// Loading security profiles: AWS's own shapes load unchanged, unknown fields are kept with a warning, an invalid
// profile is refused with the field named.
import test from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cloudSideWarnings, loadProfile, parseProfile, ProfileError } from '../../service/detect/profile.ts';

const profile = (behaviors: unknown[], extra: Record<string, unknown> = {}) => ({ securityProfileName: 'p', behaviors, ...extra });

test('what `aws iot describe-security-profile` prints loads unchanged; its extra fields are known, not warned about', (t) => {
  const described = {
    securityProfileName: 'batteryUsage',
    securityProfileArn: 'arn:aws:iot:us-east-1:123456789012:securityprofile/batteryUsage',
    securityProfileDescription: 'Shows how much battery is left in percentile.',
    behaviors: [
      { name: 'great-than-75', metric: 'batteryPercentage', criteria: { comparisonOperator: 'greater-than', value: { number: 75 }, consecutiveDatapointsToAlarm: 5, consecutiveDatapointsToClear: 1 } },
      { name: 'cellularBandwidth', metric: 'aws:message-byte-size', criteria: { comparisonOperator: 'less-than', value: { count: 128 }, consecutiveDatapointsToAlarm: 1, consecutiveDatapointsToClear: 1 } },
      { name: 'retain-bytes', metric: 'aws:all-bytes-in' },
    ],
    alertTargets: { SNS: { alertTargetArn: 'arn:aws:sns:us-east-1:123456789012:alerts', roleArn: 'arn:aws:iam::123456789012:role/sns' } },
    additionalMetricsToRetainV2: [{ metric: 'aws:num-listening-tcp-ports' }],
    version: 2,
    creationDate: '2020-11-17T23:02:12.879000-09:00',
    lastModifiedDate: '2020-11-17T23:02:12.879000-09:00',
  };
  const p = parseProfile(described);
  t.is(p.name, 'batteryUsage');
  t.deepEqual(
    p.behaviors.map((b) => [b.name, b.type, b.criteria?.op, b.criteria?.threshold, b.criteria?.toAlarm]),
    [
      ['great-than-75', 'number', 'greater-than', 75, 5],
      ['cellularBandwidth', 'number', 'less-than', 128, 1],
      ['retain-bytes', 'number', undefined, undefined, undefined],
    ],
  );
  t.is(p.things, undefined, 'every thing');
  t.deepEqual(p.warnings, ['alertTargets: SNS is not reached from here; alerts go to the targets the service is started with']);
  // cloud-side: measured by the embedded broker; Detect warns only where the broker is another
  t.deepEqual(cloudSideWarnings(p), [
    'behaviors[1].metric: aws:message-byte-size is cloud-side, measured only by the embedded broker (not by an external one); the behaviour sees no datapoints',
  ]);
});

test('unknown fields at every level are kept and ignored, each with a warning', (t) => {
  const p = parseProfile(
    profile([{ name: 'b', metric: 'aws:all-bytes-out', future: 1, criteria: { comparisonOperator: 'less-than', value: { count: 5, unit: 'B' }, newKnob: true } }], { owner: 'ops' }),
  );
  t.deepEqual(p.warnings, [
    'owner: unknown field, kept and ignored',
    'behaviors[0].future: unknown field, kept and ignored',
    'behaviors[0].criteria.newKnob: unknown field, kept and ignored',
    'behaviors[0].criteria.value.unit: unknown field, kept and ignored',
  ]);
  t.is((p.raw as any).owner, 'ops', 'kept');
  t.is(p.behaviors[0].criteria!.threshold, 5);
});

test('defaults: 1 datapoint to alarm and to clear; count as a string of digits (CloudFormation\'s shape) is a number', (t) => {
  const [b] = parseProfile(profile([{ name: 'b', metric: 'aws:num-listening-tcp-ports', criteria: { comparisonOperator: 'less-than-equals', value: { count: '5' } } }])).behaviors;
  t.like(b.criteria, { toAlarm: 1, toClear: 1, threshold: 5 });
});

const REFUSED: [string, unknown, string, RegExp][] = [
  ['not an object', [], '(profile)', /not an object/],
  ['no name', { behaviors: [] }, 'securityProfileName', /missing/],
  ['a name with a slash', { securityProfileName: 'a/b' }, 'securityProfileName', /\[a-zA-Z0-9:_-\]/],
  ['behaviors not a list', profile({} as any), 'behaviors', /not a list/],
  ['a behaviour without a name', profile([{ metric: 'aws:all-bytes-in' }]), 'behaviors[0].name', /missing/],
  ['two behaviours with one name', profile([{ name: 'x', metric: 'aws:all-bytes-in' }, { name: 'x', metric: 'aws:all-bytes-out' }]), 'behaviors[1].name', /earlier behaviour/],
  ['an aws: metric AWS does not define', profile([{ name: 'x', metric: 'aws:cpu' }]), 'behaviors[0].metric', /not a metric AWS defines/],
  ['an operator for another type', profile([{ name: 'x', metric: 'aws:listening-tcp-ports', criteria: { comparisonOperator: 'less-than', value: { count: 3 } } }]), 'behaviors[0].criteria.comparisonOperator', /does not apply to aws:listening-tcp-ports \(a port-list\): use in-port-set, not-in-port-set/],
  ['a cidr operator on a number', profile([{ name: 'x', metric: 'aws:all-bytes-in', criteria: { comparisonOperator: 'in-cidr-set', value: { cidrs: ['10.0.0.0/8'] } } }]), 'behaviors[0].criteria.comparisonOperator', /does not apply/],
  ['an unknown operator', profile([{ name: 'x', metric: 'aws:all-bytes-in', criteria: { comparisonOperator: 'about', value: { count: 3 } } }]), 'behaviors[0].criteria.comparisonOperator', /does not apply/],
  ['no operator', profile([{ name: 'x', metric: 'aws:all-bytes-in', criteria: { value: { count: 3 } } }]), 'behaviors[0].criteria.comparisonOperator', /is missing; one of less-than/],
  ['the wrong value key', profile([{ name: 'x', metric: 'aws:all-bytes-in', criteria: { comparisonOperator: 'less-than', value: { number: 3 } } }]), 'behaviors[0].criteria.value.count', /missing/],
  ['a negative count', profile([{ name: 'x', metric: 'aws:all-bytes-in', criteria: { comparisonOperator: 'less-than', value: { count: -1 } } }]), 'behaviors[0].criteria.value.count', /not an integer/],
  ['a bad CIDR', profile([{ name: 'x', metric: 'aws:destination-ip-addresses', criteria: { comparisonOperator: 'in-cidr-set', value: { cidrs: ['10.0.0.0/8', '10.1.0.0/33'] } } }]), 'behaviors[0].criteria.value.cidrs[1]', /prefix length out of range 0\.\.32/],
  ['a port out of range', profile([{ name: 'x', metric: 'aws:listening-udp-ports', criteria: { comparisonOperator: 'in-port-set', value: { ports: [53, 70000] } } }]), 'behaviors[0].criteria.value.ports[1]', /0 to 65535/],
  ['consecutiveDatapointsToAlarm 11', profile([{ name: 'x', metric: 'aws:all-bytes-in', criteria: { comparisonOperator: 'less-than', value: { count: 1 }, consecutiveDatapointsToAlarm: 11 } }]), 'behaviors[0].criteria.consecutiveDatapointsToAlarm', /1 to 10/],
  ['consecutiveDatapointsToClear 0', profile([{ name: 'x', metric: 'aws:all-bytes-in', criteria: { comparisonOperator: 'less-than', value: { count: 1 }, consecutiveDatapointsToClear: 0 } }]), 'behaviors[0].criteria.consecutiveDatapointsToClear', /1 to 10/],
  ['durationSeconds on a list', profile([{ name: 'x', metric: 'aws:listening-tcp-ports', criteria: { comparisonOperator: 'in-port-set', value: { ports: [1] }, durationSeconds: 300 } }]), 'behaviors[0].criteria.durationSeconds', /does not apply/],
  ['an unknown statistic', profile([{ name: 'x', metric: 'aws:all-bytes-in', criteria: { comparisonOperator: 'less-than', statisticalThreshold: { statistic: 'p95' } } }]), 'behaviors[0].criteria.statisticalThreshold.statistic', /not one of p0, p0\.01/],
  ['a statistic on a list', profile([{ name: 'x', metric: 'aws:destination-ip-addresses', criteria: { comparisonOperator: 'in-cidr-set', statisticalThreshold: { statistic: 'p90' } } }]), 'behaviors[0].criteria.statisticalThreshold', /does not apply/],
  ['a statistic and a value', profile([{ name: 'x', metric: 'aws:all-bytes-in', criteria: { comparisonOperator: 'less-than', value: { count: 1 }, statisticalThreshold: { statistic: 'p90' } } }]), 'behaviors[0].criteria.value', /beside statisticalThreshold/],
  ['a custom number list with a string', profile([{ name: 'x', metric: 'temps', criteria: { comparisonOperator: 'in-set', value: { numbers: [1, 'two'] } } }]), 'behaviors[0].criteria.value.numbers[1]', /not a number/],
  ['suppressAlerts not a boolean', profile([{ name: 'x', metric: 'aws:all-bytes-in', suppressAlerts: 'yes' }]), 'behaviors[0].suppressAlerts', /true or false/],
  ['things not a list', profile([], { things: 'dev-1' }), 'things', /not "all" or a list/],
  ['a thing-group file that is not there', profile([], { thingGroupFile: '/nonexistent/group.txt' }), 'thingGroupFile', /cannot be read/],
];

for (const [what, doc, field, message] of REFUSED) {
  test(`refused, naming the field: ${what}`, (t) => {
    const err = t.throws(() => parseProfile(doc), { instanceOf: ProfileError });
    t.is(err!.field, field);
    t.regex(err!.message, message);
    t.true(err!.message.startsWith(field + ': '));
  });
}

test('ML Detect behaviours load, kept as retain-only with a warning', (t) => {
  const p = parseProfile(profile([{ name: 'ml', metric: 'aws:all-bytes-out', criteria: { consecutiveDatapointsToAlarm: 1, consecutiveDatapointsToClear: 1, mlDetectionConfig: { confidenceLevel: 'HIGH' } } }]));
  t.is(p.behaviors[0].criteria, undefined);
  t.regex(p.warnings[0], /mlDetectionConfig: ML Detect is not available here/);
});

test('custom metric types follow from the value they are compared with', (t) => {
  const p = parseProfile(
    profile([
      { name: 'n', metric: 'battery', criteria: { comparisonOperator: 'less-than', value: { number: 5 } } },
      { name: 'nl', metric: 'temps', criteria: { comparisonOperator: 'not-in-set', value: { numbers: [99] } } },
      { name: 'sl', metric: 'apps', criteria: { comparisonOperator: 'in-set', value: { strings: ['a'] } } },
      { name: 'ip', metric: 'peers', criteria: { comparisonOperator: 'not-in-cidr-set', value: { cidrs: ['192.168.0.0/16', '::1/128'] } } },
      { name: 'st', metric: 'load', criteria: { comparisonOperator: 'less-than', statisticalThreshold: { statistic: 'p99.9' }, durationSeconds: 600 } },
    ]),
  );
  t.deepEqual(
    p.behaviors.map((b) => b.type),
    ['number', 'number-list', 'string-list', 'ip-address-list', 'number'],
  );
  t.is(p.behaviors[4].criteria!.percentile, 0.999);
});

test('which things: all by default, a list, or a thing-group file (one name a line, # comments) beside the profile', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'profile-'));
  writeFileSync(join(dir, 'group.txt'), 'dev-1\n# retired: dev-2\n dev-3 \n\n');
  writeFileSync(join(dir, 'p.json'), JSON.stringify(profile([], { things: ['dev-9'], thingGroupFile: 'group.txt' })));
  t.deepEqual([...loadProfile(join(dir, 'p.json')).things!].sort(), ['dev-1', 'dev-3', 'dev-9']);
  t.is(parseProfile(profile([], { things: 'all' })).things, undefined);
  writeFileSync(join(dir, 'bad.json'), '{"securityProfileName": ');
  t.throws(() => loadProfile(join(dir, 'bad.json')), { instanceOf: ProfileError, message: /bad\.json/ });
});
