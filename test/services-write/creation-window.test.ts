import { test } from 'node:test';
import assert from 'node:assert/strict';
import { REFUSED, call, names, startHost } from './helpers.js';
import type { Host } from './helpers.js';

const HIDE = 'qmcp-incomplete';
const HOLD = 'prohibit-start';

/**
 * What a crash at `step` would leave: the call is held there while the
 * agent tries the new qube, then the step fails and the create rolls back.
 */
async function heldAt(
  h: Host,
  full: string,
  payload: unknown,
  step: string,
  look: () => Promise<void>,
): Promise<void> {
  let seen = false;
  const r = await call(h, full, payload, {
    fault: async (s) => {
      if (s !== step) return;
      seen = true;
      await look();
      throw new Error(`crash at ${s}`);
    },
  });
  assert.ok(seen, `step ${step} reached`);
  assert.deepEqual(r, REFUSED);
}

test('creation window: a disposable is born hidden and held, because its template is marked first', async () => {
  const h = await startHost();
  try {
    const steps = ['source-marked', 'created', 'hidden', 'source-unmarked', 'stripped', 'configured', 'tagged', 'verified'];
    for (const step of steps) {
      await heldAt(h, 'qmcp.CreateDisposable+ai-dvm', { name: 'ai-held' }, step, async () => {
        const vm = h.vm('ai-held');
        if (vm) {
          assert.ok(vm.tags.includes(HIDE), `born hidden (${step})`);
          assert.equal(vm.features[HOLD], 'qmcp: incomplete', `born held (${step})`);
        }
        const dvmt = h.vm('ai-dvm');
        assert.ok(dvmt);
        const marked = step === 'source-marked' || step === 'created' || step === 'hidden';
        assert.equal(dvmt.tags.includes(HIDE), marked, `template hidden only while the disposable is made (${step})`);
        assert.equal(dvmt.features[HOLD] !== undefined, marked, `template held only while the disposable is made (${step})`);
        // The agent cannot reach the half-made qube, nor start it.
        assert.deepEqual(await call(h, 'qmcp.Info+ai-held'), REFUSED, step);
        assert.deepEqual(await call(h, 'qmcp.Start+ai-held'), REFUSED, step);
      });
    }
    assert.equal(h.vm('ai-held'), undefined);
    assert.ok(!h.vm('ai-dvm')?.tags.includes(HIDE));
    assert.equal(h.vm('ai-dvm')?.features[HOLD], undefined);
  } finally {
    await h.done();
  }
});

test('creation window: a template the operator holds keeps its hold, and so does its disposable', async () => {
  const h = await startHost();
  try {
    await h.qubesd.call('admin.vm.feature.Set', 'ai-dvm', HOLD, 'operator says no');
    const r = await call(h, 'qmcp.CreateDisposable+ai-dvm', { name: 'ai-kept' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(h.vm('ai-dvm')?.features[HOLD], 'operator says no');
    assert.equal(h.vm('ai-kept')?.features[HOLD], 'operator says no');
    assert.ok(!h.vm('ai-dvm')?.tags.includes(HIDE));
    assert.ok(!h.vm('ai-kept')?.tags.includes(HIDE));
  } finally {
    await h.done();
  }
});

test("creation window: dom0's tag-created-vm-with naming the umbrella or the sink refuses every create", async () => {
  const h = await startHost();
  try {
    const before = names(h);
    for (const tag of ['ai-managed', 'ai-dump']) {
      await h.qubesd.call('admin.vm.feature.Set', 'dom0', 'tag-created-vm-with', `op-auto ${tag}`);
      for (const [full, payload] of [
        ['qmcp.Create+', { name: 'ai-n', template: 'ai-tpl' }],
        ['qmcp.Clone+ai-box', { name: 'ai-n' }],
        ['qmcp.CreateDisposable+ai-dvm', { name: 'ai-n' }],
      ] as const) {
        assert.deepEqual(await call(h, full, payload), REFUSED, `${full} with ${tag}`);
        assert.deepEqual(names(h), before);
      }
    }
    // Other tags there are stripped by rule, as before.
    await h.qubesd.call('admin.vm.feature.Set', 'dom0', 'tag-created-vm-with', 'op-auto ai-full');
    assert.equal((await call(h, 'qmcp.Create+', { name: 'ai-n', template: 'ai-tpl' })).status, 0);
  } finally {
    await h.done();
  }
});
