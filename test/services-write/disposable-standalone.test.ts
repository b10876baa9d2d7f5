import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BASE_SETTINGS, call, REFUSED, startHost, testFleet } from './helpers.js';

/** testFleet, with full-tier StandaloneVMs with and without template_for_dispvms. */
function fleet(): ReturnType<typeof testFleet> {
  const f = testFleet();
  return {
    ...f,
    qubes: [
      ...f.qubes,
      {
        name: 'ai-solo-dvm',
        klass: 'StandaloneVM',
        label: 'red',
        tags: ['ai-managed', 'ai-full'],
        properties: { template_for_dispvms: true, netvm: 'ai-egress' },
      },
      { name: 'ai-solo', klass: 'StandaloneVM', label: 'red', tags: ['ai-managed', 'ai-full'], properties: { netvm: null } },
      { name: 'ops-solo-dvm', klass: 'StandaloneVM', label: 'red', properties: { template_for_dispvms: true } },
    ],
  };
}

test('disposable: a StandaloneVM with template_for_dispvms is a disposable template, as in Qubes (DVMTemplateMixin)', async () => {
  const h = await startHost(BASE_SETTINGS, fleet());
  try {
    const r = await call(h, 'qmcp.CreateDisposable+ai-solo-dvm', { name: 'ai-sd1' });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { name: 'ai-sd1', klass: 'DispVM', template: 'ai-solo-dvm', auto_cleanup: true });
    const vm = h.vm('ai-sd1');
    assert.equal(vm?.klass, 'DispVM');
    assert.equal(vm?.props['template'], 'ai-solo-dvm');
    assert.ok(vm?.tags.includes('ai-managed'));
    // without the property it is no disposable template, and one outside the umbrella stays unseen
    assert.deepEqual(await call(h, 'qmcp.CreateDisposable+ai-solo', { name: 'ai-sd2' }), {
      status: 1,
      stdout: '{"error":{"code":"not_a_disposable_template","message":"the named qube is not a disposable template"}}\n',
      stderr: '',
    });
    assert.deepEqual(await call(h, 'qmcp.CreateDisposable+ops-solo-dvm', { name: 'ai-sd3' }), REFUSED);
    assert.equal(h.vm('ai-sd2'), undefined);
    assert.equal(h.vm('ai-sd3'), undefined);
  } finally {
    await h.done();
  }
});
