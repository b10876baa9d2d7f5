import { writeFileSync } from 'node:fs';
// Writes the corpus cases of the rendered qmcp policy (both modes) over a fleet
// with a qube at every tier; record their answers with `check.sh CHECKOUT --record`.
// Each case keeps the settings it was rendered from (over DEFAULT_SETTINGS), so that
// test/policy/rendered-corpus.test.ts can render them again and find a stale case.
// usage: node scripts/policy-parser-check/rendered-cases.js   (after a build)
import { DEFAULT_SETTINGS, OPERATIONS, renderPolicy, modelHash } from '../../dist/src/shared/model/index.js';
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
for (const mode of ['least-privilege', 'compat']) {
  const overrides = { mode, egressQube: 'ai-egress', ...(mode === 'compat' ? { gate: everyAsk } : {}) };
  const settings = { ...JSON.parse(JSON.stringify(DEFAULT_SETTINGS)), ...overrides, model: modelHash() };
  const text = renderPolicy(settings);
  const services = [...new Set(text.split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.split(/\s+/)[0]).filter((s) => s !== '*'))].sort();
  const calls = [];
  for (const s of services) { calls.push([s, '']); if (s.startsWith('qmcp.')) calls.push([s, 'ai-full']); }
  calls.push(['qubes.OpenInVM', ''], ['qubes.VMShell', ''], ['admin.vm.tag.Set', 'ai-full'], ['qmcp.Unknown', '']);
  const c = {
    fleet: 'qmcp-fleet.json',
    settings: overrides,
    files: { 'etc/qubes/policy.d/30-qmcp.policy': text.replace(/\n$/, '').split('\n') },
    calls,
    sources: ['mcp-control', 'ai-read', 'ai-exec', 'ai-full', 'sink', 'hybrid', 'vault', 'tomb'],
    targets: [...qubes, 'dom0', '@adminvm', '@default', '@dispvm', '@dispvm:ai-dvm', '@dispvm:default-dvm', '@dispvm:vault', '@dispvm:nonexistent', 'nonexistent', 'uuid:00000000-0000-0000-0000-000000000000'],
  };
  writeFileSync(`${dir}/qmcp-rendered-${mode}.case.json`, JSON.stringify(c, null, 1) + '\n');
  console.log(mode, services.length, 'services,', calls.length * c.sources.length * c.targets.length, 'queries');
}
