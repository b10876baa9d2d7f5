import { writeFileSync } from 'node:fs';
// Writes the corpus cases of the rendered qmcp policy (both modes) over a fleet
// with a qube at every tier; record their answers with `check.sh CHECKOUT --record`.
// Each case keeps the settings it was rendered from (over DEFAULT_SETTINGS), so that
// test/policy/rendered-corpus.test.ts can render them again and find a stale case.
// usage: node scripts/policy-parser-check/rendered-cases.js   (after a build)
import { DEFAULT_SETTINGS, OPERATIONS, hasFatal, modelHash, parsePrincipals, renderPolicies, renderPolicy } from '../../dist/src/shared/model/index.js';
const dir = new URL('../../test/fixtures/policy-corpus', import.meta.url).pathname;
const fleet = {
  properties: { default_dispvm: 'default-dvm' },
  qubes: [
    { name: 'tpl', klass: 'TemplateVM' },
    { name: 'ai-tpl', klass: 'TemplateVM', tags: ['ai-managed', 'ai-full'] },
    { name: 'mcp-control', klass: 'AppVM', template: 'tpl', power_state: 'Running' },
    { name: 'ai-read', klass: 'AppVM', template: 'ai-tpl', tags: ['ai-managed'], power_state: 'Running' },
    { name: 'ai-exec', klass: 'AppVM', template: 'ai-tpl', tags: ['ai-managed', 'ai-exec'], power_state: 'Running' },
    { name: 'ai-net', klass: 'AppVM', template: 'ai-tpl', tags: ['ai-managed', 'ai-net'], power_state: 'Running' },
    { name: 'ai-full', klass: 'AppVM', template: 'ai-tpl', tags: ['ai-managed', 'ai-full'], power_state: 'Running' },
    { name: 'ai-halted', klass: 'AppVM', template: 'ai-tpl', tags: ['ai-managed', 'ai-full'] },
    { name: 'ai-half', klass: 'DispVM', template: 'ai-dvm', tags: ['ai-managed', 'ai-full', 'qmcp-incomplete'], power_state: 'Running' },
    { name: 'ai-dvm', klass: 'AppVM', template: 'ai-tpl', tags: ['ai-managed', 'ai-full'], properties: { template_for_dispvms: true } },
    { name: 'ai-egress', klass: 'AppVM', template: 'ai-tpl', tags: ['ai-managed'], properties: { provides_network: true }, power_state: 'Running' },
    { name: 'sink', klass: 'AppVM', template: 'tpl', tags: ['ai-dump'], power_state: 'Running' },
    { name: 'sink-halted', klass: 'AppVM', template: 'tpl', tags: ['ai-dump'] },
    { name: 'hybrid', klass: 'AppVM', template: 'tpl', tags: ['ai-managed', 'ai-dump', 'ai-exec'], power_state: 'Running' },
    { name: 'vault', klass: 'AppVM', template: 'tpl', power_state: 'Running' },
    { name: 'tomb', klass: 'AppVM', template: 'ai-tpl', tags: ['qmcp-owner-mcp-control', 'qmcp-tombstone-20260101T000000Z'], power_state: 'Running' },
    { name: 'default-dvm', klass: 'AppVM', template: 'tpl', properties: { template_for_dispvms: true } },
    { name: 'sys-firewall', klass: 'AppVM', template: 'tpl', properties: { provides_network: true }, power_state: 'Running' },
  ],
};
writeFileSync(`${dir}/qmcp-fleet.json`, JSON.stringify(fleet, null, 1) + '\n');
const qubes = fleet.qubes.map((q) => q.name);
// least-privilege with the gate's defaults; compat with every operation that can be gated asking
const everyAsk = Object.fromEntries(OPERATIONS.filter((op) => op.gate !== null).map((op) => [op.id, 'ask']));
/** The services a policy's lines name, each called without an argument and the qmcp ones with a qube's name too. */
function callsOf(text, argument) {
  const services = [...new Set(text.split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.split(/\s+/)[0]).filter((s) => s !== '*'))].sort();
  const calls = [];
  for (const s of services) { calls.push([s, '']); if (s.startsWith('qmcp.')) calls.push([s, argument]); }
  calls.push(['qubes.OpenInVM', ''], ['qubes.VMShell', ''], ['admin.vm.tag.Set', argument], ['qmcp.Unknown', '']);
  return calls;
}
for (const mode of ['least-privilege', 'compat']) {
  const overrides = { mode, egressQube: 'ai-egress', ...(mode === 'compat' ? { gate: everyAsk } : {}) };
  const settings = { ...JSON.parse(JSON.stringify(DEFAULT_SETTINGS)), ...overrides, model: modelHash() };
  const text = renderPolicy(settings);
  const calls = callsOf(text, 'ai-full');
  const c = {
    fleet: 'qmcp-fleet.json',
    settings: overrides,
    files: { 'etc/qubes/policy.d/30-qmcp.policy': text.replace(/\n$/, '').split('\n') },
    calls,
    sources: ['mcp-control', 'ai-read', 'ai-exec', 'ai-full', 'sink', 'hybrid', 'vault', 'tomb'],
    targets: [...qubes, 'dom0', '@adminvm', '@default', '@dispvm', '@dispvm:ai-dvm', '@dispvm:default-dvm', '@dispvm:vault', '@dispvm:nonexistent', 'nonexistent', 'uuid:00000000-0000-0000-0000-000000000000'],
  };
  writeFileSync(`${dir}/qmcp-rendered-${mode}.case.json`, JSON.stringify(c, null, 1) + '\n');
  console.log(mode, calls.length, 'calls,', calls.length * c.sources.length * c.targets.length, 'queries');
}

// Three principals (docs/principals.md): a, b and c, each with its own tags, sinks and prefix; a and b share an
// egress qube, a may push into b's sinks tagged share-a-b; a qube tagged into two worlds; c in compat mode, asking for copies.
const worldQubes = (w) => [
  { name: `${w}-read`, klass: 'AppVM', template: 'tpl', tags: [`${w}-managed`], power_state: 'Running' },
  { name: `${w}-e`, klass: 'AppVM', template: 'tpl', tags: [`${w}-managed`, `${w}-exec`], power_state: 'Running' },
  { name: `${w}-f`, klass: 'AppVM', template: 'tpl', tags: [`${w}-managed`, `${w}-full`], power_state: 'Running' },
  { name: `${w}-dump`, klass: 'AppVM', template: 'tpl', tags: [`${w}-dump`] },
  { name: `${w}-hybrid`, klass: 'AppVM', template: 'tpl', tags: [`${w}-managed`, `${w}-exec`, `${w}-dump`], power_state: 'Running' },
  { name: `${w}-dvm`, klass: 'AppVM', template: 'tpl', tags: [`${w}-managed`, `${w}-full`], properties: { template_for_dispvms: true } },
  { name: `${w}-half`, klass: 'AppVM', template: 'tpl', tags: [`${w}-managed`, `${w}-full`, 'qmcp-incomplete'], power_state: 'Running' },
  { name: `${w}-tomb`, klass: 'AppVM', template: 'tpl', tags: [`qmcp-owner-ctl-${w}`, 'qmcp-tombstone', 'qmcp-tombstone-20260101T000000Z'], power_state: 'Running' },
];
const principalsFleet = {
  properties: { default_dispvm: 'default-dvm' },
  qubes: [
    { name: 'tpl', klass: 'TemplateVM' },
    ...['a', 'b', 'c'].flatMap((w) => [{ name: `ctl-${w}`, klass: 'AppVM', template: 'tpl', power_state: 'Running' }, ...worldQubes(w)]),
    { name: 'egress-ab', klass: 'AppVM', template: 'tpl', properties: { provides_network: true }, power_state: 'Running' },
    { name: 'egress-c', klass: 'AppVM', template: 'tpl', properties: { provides_network: true }, power_state: 'Running' },
    { name: 'b-shared', klass: 'AppVM', template: 'tpl', tags: ['b-dump', 'share-a-b'] },
    { name: 'ab-dual', klass: 'AppVM', template: 'tpl', tags: ['a-managed', 'a-exec', 'b-managed', 'b-exec'], power_state: 'Running' },
    { name: 'work', klass: 'AppVM', template: 'tpl', power_state: 'Running' },
    { name: 'default-dvm', klass: 'AppVM', template: 'tpl', properties: { template_for_dispvms: true } },
  ],
};
const entry = (w, extra) => ({
  principal: `ctl-${w}`,
  tags: { umbrella: `${w}-managed`, exec: `${w}-exec`, net: `${w}-net`, full: `${w}-full`, sink: `${w}-dump` },
  mode: 'least-privilege',
  namePrefix: `${w}-`,
  poolCapBytes: 2 ** 36,
  privateCapBytes: 2 ** 33,
  tombstoneRetentionDays: 7,
  ...extra,
});
const principalsSettings = {
  principals: [entry('a', { egressQube: 'egress-ab' }), entry('b', { egressQube: 'egress-ab' }), entry('c', { egressQube: 'egress-c', mode: 'compat', gate: { copy: 'ask' } })],
  shared: { egressQubes: ['egress-ab'], sinks: [{ from: 'ctl-a', into: 'ctl-b', tag: 'share-a-b' }] },
};
const reading = parsePrincipals({ ...principalsSettings, model: modelHash() });
if (hasFatal(reading.problems)) throw new Error(JSON.stringify(reading.problems));
writeFileSync(`${dir}/qmcp-principals-fleet.json`, JSON.stringify(principalsFleet, null, 1) + '\n');
const principalsText = renderPolicies(reading.principals);
const principalsCase = {
  fleet: 'qmcp-principals-fleet.json',
  settings: principalsSettings,
  files: { 'etc/qubes/policy.d/30-qmcp.policy': principalsText.replace(/\n$/, '').split('\n') },
  calls: callsOf(principalsText, 'b-e'),
  sources: ['ctl-a', 'ctl-b', 'a-read', 'a-e', 'a-hybrid', 'b-e', 'b-dump', 'c-f', 'ab-dual', 'b-tomb'],
  targets: [...principalsFleet.qubes.map((q) => q.name).filter((n) => !/-(dvm|read)$/.test(n) || n === 'b-read'), '@adminvm', '@default', '@dispvm:a-dvm', '@dispvm:b-dvm', 'nonexistent'],
};
writeFileSync(`${dir}/qmcp-principals.case.json`, JSON.stringify(principalsCase, null, 1) + '\n');
console.log('principals', principalsCase.calls.length, 'calls,', principalsCase.calls.length * principalsCase.sources.length * principalsCase.targets.length, 'queries');
