import { test } from 'node:test';
import assert from 'node:assert/strict';
import { REFUSED, auditValid, call, json, names, spawnCall, startHost, BASE_SETTINGS } from './helpers.js';

test('create: AppVM from a visible template, born at min(source tag, ceiling), umbrella last, egress explicit', async () => {
  const h = await startHost();
  try {
    // dom0's own propagation must not survive: tag-created-vm-with adds tags to whatever dom0 creates.
    await h.qubesd.call('admin.vm.feature.Set', 'dom0', 'tag-created-vm-with', 'op-auto ai-full');
    const r = await call(h, 'qmcp.Create+', { name: 'ai-new', template: 'ai-tpl' });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(json(r), { name: 'ai-new', klass: 'AppVM', template: 'ai-tpl' });
    const vm = h.vm('ai-new');
    assert.ok(vm);
    // ai-tpl is ai-full; the ceiling is exec.
    assert.deepEqual([...vm.tags].sort(), ['ai-exec', 'ai-managed', 'created-by-dom0', 'qmcp-owner-mcp-control']);
    assert.equal(vm.props['netvm'], 'ai-egress');
    assert.ok('default_dispvm' in vm.props, 'default_dispvm set explicitly');
    assert.equal(vm.props['default_dispvm'], null, 'the template\'s default_dispvm is outside: none');
    assert.equal(vm.power, 'Halted');
    assert.equal(await auditValid(h), true);
  } finally {
    await h.done();
  }
});

test('create: in compat mode an untiered template is usable, and its child is born untiered (literal tag)', async () => {
  const h = await startHost({ ...BASE_SETTINGS, mode: 'compat', birthCeiling: 'full' });
  try {
    const r = await call(h, 'qmcp.CreateDispTemplate+', { name: 'ai-mydvm', template: 'ai-tpl-ro', netvm: 'none', label: 'green' });
    assert.equal(r.status, 0, r.stderr);
    const vm = h.vm('ai-mydvm');
    assert.ok(vm);
    assert.equal(vm.props['template_for_dispvms'], true);
    assert.equal(vm.props['netvm'], null);
    assert.equal(vm.props['label'], 'green');
    // The untiered template gives an untiered child, whatever the ceiling.
    assert.deepEqual([...vm.tags].sort(), ['ai-managed', 'created-by-dom0', 'qmcp-owner-mcp-control']);
  } finally {
    await h.done();
  }
});

test('create: absent, outside, below-tier and malformed requests get one byte-identical refusal and change nothing', async () => {
  const h = await startHost();
  try {
    const before = names(h);
    const cases: [string, string, unknown][] = [
      ['absent template', 'qmcp.Create+', { name: 'ai-a', template: 'nosuch' }],
      ['outside template', 'qmcp.Create+', { name: 'ai-a', template: 'debian' }],
      ['template tagged ai-full but outside the umbrella', 'qmcp.Create+', { name: 'ai-a', template: 'ai-outside' }],
      ['unknown key', 'qmcp.Create+', { name: 'ai-a', template: 'ai-tpl', provides_network: true }],
      ['argument given', 'qmcp.Create+ai-tpl', { name: 'ai-a', template: 'ai-tpl' }],
      ['not JSON', 'qmcp.Create+', 'name=ai-a'],
      ['name held outside the umbrella', 'qmcp.Create+', { name: 'ai-outside', template: 'ai-tpl' }],
      ['clone of an outside qube', 'qmcp.Clone+vault', { name: 'ai-a' }],
      ['clone of an absent qube', 'qmcp.Clone+nosuch', { name: 'ai-a' }],
      ['clone below full tier', 'qmcp.Clone+ai-execbox', { name: 'ai-a' }],
      ['disposable from an outside template', 'qmcp.CreateDisposable+ops-dvm', { name: 'ai-a' }],
    ];
    for (const [why, full, payload] of cases) {
      assert.deepEqual(await call(h, full, payload), REFUSED, why);
    }
    assert.deepEqual(names(h), before);
    assert.equal(await auditValid(h), true);
  } finally {
    await h.done();
  }
});

test('create: the agent\'s own mistakes in a new qube\'s fields are actionable, before any lookup: the same for an absent or outside source', async () => {
  const h = await startHost();
  try {
    const before = names(h);
    const cases: [string, Record<string, unknown>, string][] = [
      ['name outside the prefix', { name: 'work2' }, 'name_prefix'],
      ['the bare prefix', { name: 'ai-' }, 'name_prefix'],
      ['not a qube name', { name: '9box' }, 'name_invalid'],
      ['a name of another type', { name: 7 }, 'name_invalid'],
      ['an unknown label', { name: 'ai-a', label: 'pink' }, 'unknown_label'],
      ['a netvm other than inherit/none', { name: 'ai-a', netvm: 'sys-firewall' }, 'bad_netvm'],
    ];
    for (const [why, fields, code] of cases) {
      const answers = [];
      // one at a time: calls past the slot bound would be refused for that reason instead
      for (const [full, extra] of [
        ['qmcp.Create+', { template: 'ai-tpl' }],
        ['qmcp.Create+', { template: 'debian' }],
        ['qmcp.Create+', { template: 'nosuch' }],
        ['qmcp.Clone+ai-box', {}],
        ['qmcp.Clone+vault', {}],
        ['qmcp.CreateDisposable+ai-dvm', {}],
        ['qmcp.CreateDisposable+ops-dvm', {}],
      ] as const) {
        answers.push(await call(h, full, { ...extra, ...fields }));
      }
      for (const r of answers) {
        assert.equal(r.status, 1, why);
        assert.equal(r.stderr, '', why);
        assert.equal((json(r)['error'] as { code: string }).code, code, why);
        assert.deepEqual(r, answers[0], `${why}: the answer depends on the input alone`);
      }
    }
    assert.deepEqual(names(h), before);
    assert.equal(await auditValid(h), true);
  } finally {
    await h.done();
  }
});

test('create: a name already visible is actionable; no egress configured is actionable; one outside the umbrella refuses', async () => {
  const h = await startHost();
  try {
    const r = await call(h, 'qmcp.Create+', { name: 'ai-box', template: 'ai-tpl' });
    assert.equal(r.status, 1);
    assert.equal((json(r)['error'] as { code: string }).code, 'exists');
    h.writeSettings({ ...BASE_SETTINGS, egressQube: undefined });
    const noEgress = await call(h, 'qmcp.Create+', { name: 'ai-n', template: 'ai-tpl', netvm: 'none' });
    assert.equal((json(noEgress)['error'] as { code: string }).code, 'no_egress');
    // after scope: an outside template is still the refusal
    assert.deepEqual(await call(h, 'qmcp.Create+', { name: 'ai-n', template: 'debian' }), REFUSED);
    // An egress qube outside the umbrella is no egress.
    h.writeSettings({ ...BASE_SETTINGS, egressQube: 'sys-firewall' });
    assert.deepEqual(await call(h, 'qmcp.Create+', { name: 'ai-n', template: 'ai-tpl' }), REFUSED);
    assert.equal(h.vm('ai-n'), undefined);
  } finally {
    await h.done();
  }
});

test('create: least-privilege default ceiling is untiered', async () => {
  const h = await startHost({ ...BASE_SETTINGS, birthCeiling: undefined });
  try {
    assert.equal((await call(h, 'qmcp.Create+', { name: 'ai-u', template: 'ai-tpl' })).status, 0);
    assert.deepEqual([...(h.vm('ai-u')?.tags ?? [])].sort(), ['ai-managed', 'created-by-dom0', 'qmcp-owner-mcp-control']);
    // Untiered in least-privilege: it cannot be the source of another qube.
    assert.deepEqual(await call(h, 'qmcp.Clone+ai-u', { name: 'ai-u2' }), REFUSED);
  } finally {
    await h.done();
  }
});

test('raw refusal bytes from the real service process: absent, outside, below tier; outside the prefix actionable', async () => {
  const h = await startHost();
  try {
    const calls: [string, unknown][] = [
      ['qmcp.Clone+nosuch', { name: 'ai-z' }],
      ['qmcp.Clone+vault', { name: 'ai-z' }],
      ['qmcp.Clone+ai-execbox', { name: 'ai-z' }],
      ['qmcp.Remove+vault', ''],
      ['qmcp.Remove+nosuch', ''],
      ['qmcp.SetFeature+ai-box', { name: 'internal', value: '1' }],
    ];
    // One at a time: concurrent calls past the slot bound would be refused for that reason instead.
    for (const [full, payload] of calls) assert.deepEqual(await spawnCall(h, full, payload), REFUSED, full);
    // outside the prefix: the actionable answer, byte for byte, from the process too
    assert.deepEqual(await spawnCall(h, 'qmcp.Clone+ai-box', { name: 'zz-outside' }), {
      status: 1,
      stdout: '{"error":{"code":"name_prefix","message":"the new name must start with ai- and go on after it"}}\n',
      stderr: '',
    });
    assert.equal((await spawnCall(h, 'qmcp.Clone+ai-box', { name: 'ai-z' })).status, 0, 'the same call, well-formed, succeeds');
    assert.equal(await auditValid(h), true);
  } finally {
    await h.done();
  }
});
