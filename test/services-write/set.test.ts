import { test } from 'node:test';
import assert from 'node:assert/strict';
import { REFUSED, auditValid, call, json, startHost } from './helpers.js';
import { OPEN_GATE } from '../../src/sim/open-gate.js';

test('set-property: allowlisted values are set and echoed as read back', async () => {
  const h = await startHost();
  try {
    const ok: [string, unknown, unknown][] = [
      ['memory', 1024, 1024],
      ['maxmem', 0, 0],
      // within the host's limit of one qube (qubeLimits; Qubes' default 2 unless set)
      ['vcpus', 2, 2],
      ['label', 'purple', 'purple'],
      ['autostart', true, true],
      ['include_in_backups', false, false],
      ['default_dispvm', 'ai-dvm', 'ai-dvm'],
      ['netvm', null, null],
    ];
    for (const [name, value, echoed] of ok) {
      const r = await call(h, 'qmcp.SetProperty+ai-box', { name, value });
      assert.equal(r.status, 0, `${name}: ${r.stderr}`);
      assert.deepEqual(json(r), { name, value: echoed });
    }
    assert.equal(h.vm('ai-box')?.props['memory'], 1024);
    assert.equal(h.vm('ai-box')?.props['netvm'], null);
    assert.equal(await auditValid(h), true);
  } finally {
    await h.done();
  }
});

test('set-property: escalation class and bad shapes refuse uniformly, bad values are actionable, and nothing changes', async () => {
  const h = await startHost();
  try {
    const cases: [string, string, unknown][] = [
      ['provides_network', 'qmcp.SetProperty+ai-box', { name: 'provides_network', value: true }],
      ['template retarget', 'qmcp.SetProperty+ai-box', { name: 'template', value: 'debian' }],
      ['netvm to another qube', 'qmcp.SetProperty+ai-box', { name: 'netvm', value: 'sys-firewall' }],
      ['netvm to a visible qube', 'qmcp.SetProperty+ai-box', { name: 'netvm', value: 'ai-egress' }],
      ['netvm of a network provider', 'qmcp.SetProperty+ai-egress', { name: 'netvm', value: null }],
      ['default_dispvm outside', 'qmcp.SetProperty+ai-box', { name: 'default_dispvm', value: 'ops-dvm' }],
      ['default_dispvm not a DVMT', 'qmcp.SetProperty+ai-box', { name: 'default_dispvm', value: 'ai-read' }],
      ['below tier', 'qmcp.SetProperty+ai-execbox', { name: 'memory', value: 512 }],
      ['outside', 'qmcp.SetProperty+vault', { name: 'memory', value: 512 }],
      ['absent', 'qmcp.SetProperty+nosuch', { name: 'memory', value: 512 }],
      ['extra key', 'qmcp.SetProperty+ai-box', { name: 'memory', value: 512, force: true }],
      ['prototype key', 'qmcp.SetProperty+ai-box', { name: '__proto__', value: 512 }],
    ];
    // Full tier over the network provider, so its own check is what refuses.
    h.vm('ai-egress')?.tags.push('ai-full');
    const before = JSON.stringify(h.vm('ai-box'));
    for (const [why, full, payload] of cases) assert.deepEqual(await call(h, full, payload), REFUSED, why);
    // a value of the wrong type or range is the agent's own mistake: actionable, and nothing changes either
    const mistakes: [string, unknown, string][] = [
      ['float', { name: 'memory', value: 1.5 }, 'bad_value'],
      ['string number', { name: 'memory', value: '512' }, 'bad_value'],
      ['boolean for int', { name: 'vcpus', value: true }, 'bad_value'],
      ['unsafe integer', { name: 'memory', value: 2 ** 60 }, 'bad_value'],
      ['zero vcpus', { name: 'vcpus', value: 0 }, 'out_of_range'],
      ['unknown label', { name: 'label', value: 'pink' }, 'unknown_label'],
    ];
    for (const [why, payload, code] of mistakes) {
      const r = await call(h, 'qmcp.SetProperty+ai-box', payload);
      assert.equal(r.status, 1, why);
      assert.equal((json(r)['error'] as { code: string }).code, code, why);
    }
    assert.equal(JSON.stringify(h.vm('ai-box')), before);
    assert.equal(h.vm('ai-egress')?.props['netvm'], 'sys-firewall');
    assert.equal(await auditValid(h), true);
  } finally {
    await h.done();
  }
});

test('set-feature: default-deny allowlist, never internal, qube-naming values must be visible', async () => {
  const h = await startHost({
    mode: 'least-privilege',
    poolCapBytes: 1024 ** 4,
    privateCapBytes: 4 * 1024 ** 3,
    egressQube: 'ai-egress',
    featureAllowlist: ['guivm'],
    gate: OPEN_GATE,
  });
  try {
    const r = await call(h, 'qmcp.SetFeature+ai-box', { name: 'gui', value: '' });
    assert.equal(r.status, 0);
    assert.deepEqual(json(r), { name: 'gui', value: '' });
    assert.equal((await call(h, 'qmcp.SetFeature+ai-box', { name: 'guivm', value: 'ai-read' })).status, 0);
    const cases: [string, unknown][] = [
      ['internal (never allowlisted; a settings list naming it is rejected whole)', { name: 'internal', value: '1' }],
      ['not allowlisted', { name: 'service.sshd', value: '1' }],
      ['names an outside qube', { name: 'guivm', value: 'vault' }],
      ['names an absent qube', { name: 'guivm', value: 'nosuch' }],
      ['non-string value', { name: 'gui', value: 1 }],
    ];
    for (const [why, payload] of cases) assert.deepEqual(await call(h, 'qmcp.SetFeature+ai-box', payload), REFUSED, why);
    assert.equal(h.vm('ai-box')?.features['internal'], '1', 'the fleet value, untouched');
    assert.equal(h.vm('ai-box')?.features['guivm'], 'ai-read');
  } finally {
    await h.done();
  }
});
