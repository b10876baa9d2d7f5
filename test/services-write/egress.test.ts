/**
 * Egress by inheritance (SPEC §4.7): a clone or disposable keeps its
 * source's netvm only where that is the agent's egress qube or none; a
 * source on any other netvm (the operator's firewall, a global default)
 * gives a child on the egress qube, or offline without a visible one.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BASE_SETTINGS, call, json, startHost, testFleet } from './helpers.js';
import type { Host } from './helpers.js';

/** Full-tier sources on the operator's netvm, explicit and by the global default. */
function fleet(): ReturnType<typeof testFleet> {
  const f = testFleet();
  f.qubes.push(
    { name: 'ai-opnet', klass: 'AppVM', template: 'ai-tpl', label: 'blue', tags: ['ai-managed', 'ai-full'], properties: { netvm: 'sys-firewall' } },
    // no netvm given: Qubes' default, the global default_netvm (sys-firewall here)
    { name: 'ai-defnet', klass: 'AppVM', template: 'ai-tpl', label: 'blue', tags: ['ai-managed', 'ai-full'] },
    { name: 'ai-opdvm', klass: 'AppVM', template: 'ai-tpl', label: 'red', tags: ['ai-managed', 'ai-full'], properties: { template_for_dispvms: true, netvm: 'sys-firewall' } },
    { name: 'ai-standalone', klass: 'StandaloneVM', label: 'red', tags: ['ai-managed', 'ai-full'], properties: { netvm: 'sys-firewall' } },
    { name: 'ai-netprov', klass: 'AppVM', template: 'ai-tpl', label: 'orange', tags: ['ai-managed', 'ai-full'], properties: { provides_network: true, netvm: 'sys-firewall' } },
  );
  return f;
}

function netvmOf(h: Host, name: string): unknown {
  const vm = h.vm(name);
  assert.ok(vm, `${name} was made`);
  assert.ok('netvm' in vm.props, `${name}'s netvm is set explicitly`);
  return vm.props['netvm'];
}

test('egress: a child of a source on an outside netvm is put on the egress qube, never on the operator\'s netvm', async () => {
  const h = await startHost({ ...BASE_SETTINGS, birthCeiling: 'full' }, fleet());
  try {
    for (const [full, payload, child] of [
      ['qmcp.Clone+ai-opnet', { name: 'ai-c1' }, 'ai-c1'],
      ['qmcp.Clone+ai-defnet', { name: 'ai-c2' }, 'ai-c2'],
      ['qmcp.Clone+ai-standalone', { name: 'ai-c3' }, 'ai-c3'],
      ['qmcp.Clone+ai-opdvm', { name: 'ai-c4' }, 'ai-c4'],
      ['qmcp.CreateDisposable+ai-opdvm', { name: 'ai-d1', autoCleanup: false }, 'ai-d1'],
      // a network-providing qube on the operator's firewall: its clone is not providing, and behind the egress qube
      ['qmcp.Clone+ai-netprov', { name: 'ai-c5' }, 'ai-c5'],
    ] as const) {
      const r = await call(h, full, payload);
      assert.equal(r.status, 0, `${full}: ${r.stdout}${r.stderr}`);
      assert.equal(netvmOf(h, child), 'ai-egress', full);
      assert.notEqual(h.vm(child)?.props['provides_network'], true, `${full}: never network-providing`);
    }
    // a source already on the egress qube, or offline, keeps that
    assert.equal((await call(h, 'qmcp.Clone+ai-box', { name: 'ai-c6' })).status, 0);
    assert.equal(netvmOf(h, 'ai-c6'), 'ai-egress');
    assert.equal((await call(h, 'qmcp.Clone+ai-locked', { name: 'ai-c7' })).status, 0);
    assert.equal(netvmOf(h, 'ai-c7'), null);
    // and none is always the agent's to ask
    assert.equal((await call(h, 'qmcp.Clone+ai-opnet', { name: 'ai-c8', netvm: 'none' })).status, 0);
    assert.equal(netvmOf(h, 'ai-c8'), null);
    assert.deepEqual(Object.keys(json(await call(h, 'qmcp.Info+ai-c1'))).includes('netvm'), true);
  } finally {
    await h.done();
  }
});

test('egress: without a visible egress qube, a child of a source on an outside netvm is offline', async () => {
  for (const egressQube of [null, 'sys-firewall']) {
    const h = await startHost({ ...BASE_SETTINGS, birthCeiling: 'full', egressQube }, fleet());
    try {
      assert.equal((await call(h, 'qmcp.Clone+ai-opnet', { name: 'ai-c1' })).status, 0);
      assert.equal(netvmOf(h, 'ai-c1'), null, `egress ${String(egressQube)}`);
      assert.equal((await call(h, 'qmcp.CreateDisposable+ai-opdvm', { name: 'ai-d1', autoCleanup: false })).status, 0);
      assert.equal(netvmOf(h, 'ai-d1'), null, `egress ${String(egressQube)}`);
    } finally {
      await h.done();
    }
  }
});
