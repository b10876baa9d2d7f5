import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { demoFleet } from '../../src/sim/demo-fleet.js';
import { FleetError, fleetState, validateFleet } from '../../src/sim/fleet.js';

test('the demo fleet is valid and matches its JSON fixture', async () => {
  const fleet = validateFleet(demoFleet());
  const fixture = JSON.parse(await readFile(join(import.meta.dirname, '..', '..', '..', 'test', 'fixtures', 'fleets', 'demo.json'), 'utf8')) as unknown;
  assert.deepEqual(fixture, demoFleet());
  const state = fleetState(fleet);
  const names = state.vms.map((v) => v.name);
  for (const n of ['dom0', 'mcp-control', 'sys-net', 'sys-firewall', 'ai-egress', 'ai-dvm', 'ai-dump', 'vault', 'personal', 'work']) {
    assert.ok(names.includes(n), n);
  }
  const egress = state.vms.find((v) => v.name === 'ai-egress');
  assert.equal(egress?.props['provides_network'], true);
  assert.deepEqual(egress?.tags, ['ai-managed']);
  // qids are unique and start at 1 after dom0
  const qids = state.vms.map((v) => v.qid).sort((a, b) => a - b);
  assert.deepEqual(qids, Array.from({ length: qids.length }, (_, i) => i));
});

test('fleet validation names the problem', () => {
  const bad: [unknown, RegExp][] = [
    [[], /JSON object/],
    [{ qubes: [{ name: 'a', klass: 'AppVM', template: 'nope', label: 'red' }] }, /template nope/],
    [{ qubes: [{ name: 'dom0', klass: 'AppVM' }] }, /listed twice/],
    [{ qubes: [{ name: '1x', klass: 'StandaloneVM' }] }, /cannot start/],
    [{ qubes: [{ name: 't', klass: 'TemplateVM', label: 'pink' }] }, /unknown label/],
    [{ qubes: [{ name: 't', klass: 'TemplateVM', properties: { memory: 'lots' } }] }, /wants a int/],
    [{ qubes: [{ name: 't', klass: 'TemplateVM', properties: { netvm: 'ghost' } }] }, /unknown qube ghost/],
    [{ qubes: [{ name: 't', klass: 'TemplateVM', properties: { qid: 5 } }] }, /read-only/],
    [{ qubes: [{ name: 't', klass: 'Robot' }] }, /klass/],
    [{ properties: { nope: 1 }, qubes: [] }, /no global property nope/],
  ];
  for (const [fleet, re] of bad) assert.throws(() => validateFleet(fleet), (e: Error) => e instanceof FleetError && re.test(e.message), JSON.stringify(fleet));
});
