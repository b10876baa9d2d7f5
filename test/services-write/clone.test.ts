import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BASE_SETTINGS, GiB, REFUSED, auditValid, call, json, startHost } from './helpers.js';

test('clone: copies the explicit set only; tier clamped; operator tags dropped unless propagating; no devices', async () => {
  const h = await startHost({ ...BASE_SETTINGS, birthCeiling: undefined });
  try {
    const src = h.vm('ai-box');
    assert.ok(src);
    src.assigned = { usb: [{ backend: 'sys-usb', port: '2-1', devid: '0000:0000', mode: 'auto-attach', options: {} }] };
    src.firewall = ['action=accept dst4=10.1.2.3/32', 'action=drop'];
    const priv = src.volumes['private'];
    assert.ok(priv);
    priv.size = 3 * GiB;
    const r = await call(h, 'qmcp.Clone+ai-box', { name: 'ai-copy' });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(json(r), { name: 'ai-copy', klass: 'AppVM', template: 'ai-tpl' });
    const vm = h.vm('ai-copy');
    assert.ok(vm);
    // ai-full source, least-privilege, default ceiling: born untiered; op-grant dropped, op-keep kept.
    assert.deepEqual([...vm.tags].sort(), ['ai-managed', 'created-by-dom0', 'op-keep', 'qmcp-owner-mcp-control']);
    assert.deepEqual(vm.assigned, {});
    assert.deepEqual(vm.firewall, src.firewall);
    assert.deepEqual(vm.features, { gui: '1' }, 'only allowlisted features; never internal');
    assert.equal(vm.props['memory'], 800);
    assert.equal(vm.props['vcpus'], 3);
    assert.equal(vm.props['netvm'], 'ai-egress');
    assert.equal(vm.props['default_dispvm'], 'ai-dvm');
    assert.equal(vm.volumes['private']?.size, 3 * GiB);
    assert.equal(await auditValid(h), true);
  } finally {
    await h.done();
  }
});

test('clone: restriction tags pass to the child; netvm none is allowed; a TemplateVM clones to a TemplateVM', async () => {
  const h = await startHost();
  try {
    assert.equal((await call(h, 'qmcp.Clone+ai-locked', { name: 'ai-l2' })).status, 0);
    assert.deepEqual([...(h.vm('ai-l2')?.tags ?? [])].sort(), ['ai-exec', 'ai-lock', 'ai-managed', 'created-by-dom0', 'qmcp-owner-mcp-control']);
    assert.equal((await call(h, 'qmcp.Clone+ai-box', { name: 'ai-off', netvm: 'none' })).status, 0);
    assert.equal(h.vm('ai-off')?.props['netvm'], null);
    const r = await call(h, 'qmcp.Clone+ai-tpl', { name: 'ai-tpl2' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(h.vm('ai-tpl2')?.klass, 'TemplateVM');
    assert.equal(json(r)['klass'], 'TemplateVM');
    // A clone of a network provider does not provide network.
    assert.deepEqual(await call(h, 'qmcp.Clone+ai-egress', { name: 'ai-eg2' }), REFUSED, 'ai-egress is untiered: read only');
  } finally {
    await h.done();
  }
});

test('clone: in compat mode an ai-full qube is cloned, but least-privilege never inherits compat authority', async () => {
  const h = await startHost({ ...BASE_SETTINGS, mode: 'compat', birthCeiling: 'full' });
  try {
    assert.equal((await call(h, 'qmcp.Clone+ai-read', { name: 'ai-r2' })).status, 0);
    assert.deepEqual([...(h.vm('ai-r2')?.tags ?? [])].sort(), ['ai-managed', 'created-by-dom0', 'qmcp-owner-mcp-control']);
    h.writeSettings({ ...BASE_SETTINGS, birthCeiling: 'full' });
    assert.deepEqual(await call(h, 'qmcp.Clone+ai-r2', { name: 'ai-r3' }), REFUSED);
    assert.equal((await call(h, 'qmcp.Clone+ai-box', { name: 'ai-f2' })).status, 0);
    assert.ok(h.vm('ai-f2')?.tags.includes('ai-full'), 'full source under a full ceiling stays full');
  } finally {
    await h.done();
  }
});

test('disposable: from a full DVMT, born at the ceiling; template tags stripped; auto-cleanup removed for real', async () => {
  const h = await startHost();
  try {
    const r = await call(h, 'qmcp.CreateDisposable+ai-dvm', { name: 'ai-d1' });
    assert.equal(r.status, 0, r.stderr);
    const vm = h.vm('ai-d1');
    assert.ok(vm);
    assert.equal(vm.klass, 'DispVM');
    assert.deepEqual(
      [...vm.tags].filter((t) => !t.startsWith('created-by-') && !t.startsWith('disp-created-by-')).sort(),
      ['ai-exec', 'ai-managed', 'qmcp-owner-mcp-control'],
    );
    assert.equal(vm.props['auto_cleanup'], true);
    assert.equal(vm.props['netvm'], 'ai-egress');
    assert.equal(vm.features['prohibit-start'], undefined, 'released once complete');
    // Remove of an auto-cleanup disposable is real.
    h.writeSettings({ ...BASE_SETTINGS, birthCeiling: 'full' });
    assert.equal((await call(h, 'qmcp.CreateDisposable+ai-dvm', { name: 'ai-d2' })).status, 0);
    assert.equal((await call(h, 'qmcp.Remove+ai-d2', '')).status, 0);
    assert.equal(h.vm('ai-d2'), undefined);
    const p = await call(h, 'qmcp.CreateDisposable+ai-dvm', { name: 'ai-d3', autoCleanup: false });
    assert.equal(p.status, 0);
    assert.equal(h.vm('ai-d3')?.props['auto_cleanup'], false);
    assert.deepEqual(await call(h, 'qmcp.CreateDisposable+ai-box', { name: 'ai-d4' }), {
      status: 1,
      stdout: '{"error":{"code":"not_a_disposable_template","message":"the named qube is not a disposable template"}}\n',
      stderr: '',
    });
  } finally {
    await h.done();
  }
});
