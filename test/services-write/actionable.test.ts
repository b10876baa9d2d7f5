/**
 * The actionable errors no simulated machine of the noninterference pairs
 * reaches (verify/noninterference/actionable.ts names them), and the one
 * Qubes failure that stays the refusal because other qubes decide it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Qubesd, QubesdError } from '../../src/dom0/qubesd.js';
import { BASE_SETTINGS, REFUSED, call, json, startHost } from './helpers.js';

/** A qubesd whose start of every qube fails with CLS. */
function failingStart(socket: string, cls: string): Qubesd {
  return new (class extends Qubesd {
    override async call(method: string, dest: string, arg = '', payload?: string | Buffer): Promise<string> {
      if (method === 'admin.vm.Start') throw new QubesdError(cls, 'text naming /secret/outside-qube');
      return super.call(method, dest, arg, payload);
    }
  })(socket);
}

test('a start Qubes refuses for want of free memory is the refusal (free memory is what outside qubes leave); for want of a template, no_template', async () => {
  const h = await startHost();
  try {
    const journal: string[] = [];
    assert.deepEqual(await call(h, 'qmcp.Start+ai-box', '', { qubesd: failingStart(h.sim.socketPath, 'QubesMemoryError'), journal }), REFUSED);
    assert.ok(journal.some((l) => /not enough free memory/.test(l)), journal.join('\n'));
    const r = await call(h, 'qmcp.Start+ai-box', '', { qubesd: failingStart(h.sim.socketPath, 'QubesNoTemplateError') });
    assert.deepEqual(json(r), { error: { code: 'no_template', message: 'the qube has no usable template' } });
  } finally {
    await h.done();
  }
});

test('a clone of a disposable of the agent\'s at full tier is not_clonable', async () => {
  const h = await startHost({ ...BASE_SETTINGS, birthCeiling: 'full' });
  try {
    assert.equal((await call(h, 'qmcp.CreateDisposable+ai-dvm', { name: 'ai-d1', autoCleanup: false })).status, 0);
    const r = await call(h, 'qmcp.Clone+ai-d1', { name: 'ai-d2' });
    assert.deepEqual(json(r), { error: { code: 'not_clonable', message: 'this kind of qube cannot be cloned' } });
  } finally {
    await h.done();
  }
});
