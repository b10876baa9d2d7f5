/** A disposable the agent does not name: dom0 names it PREFIXdispN, the lowest N no qube holds, under the budget lock. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { freeDisposableName } from '../../src/dom0/services/disposable.js';
import { acquireBudgetLock } from '../../src/dom0/create/lock.js';
import type { HeldLock } from '../../src/dom0/lockfile.js';
import { weakened } from '../plans/helpers.js';
import { call, REFUSED, startHost, testFleet } from './helpers.js';

test('the lowest free PREFIXdispN, whoever holds the others; none past the last', async () => {
  assert.equal(freeDisposableName('ai-', new Set()), 'ai-disp1');
  assert.equal(freeDisposableName('ai-', new Set(['ai-disp1', 'ai-disp2', 'ai-disp4'])), 'ai-disp3');
  const all = new Set(Array.from({ length: 9999 }, (_, i) => `ai-disp${i + 1}`));
  assert.equal(freeDisposableName('ai-', all), null);
  // weakened: the names taken are not looked at
  const weak = ((await import(weakened('dom0/services/disposable.js', 'if (!taken.has(name))', 'if (true)'))) as { freeDisposableName: typeof freeDisposableName }).freeDisposableName;
  assert.equal(weak('ai-', new Set(['ai-disp1'])), 'ai-disp1');
});

test('qmcp.CreateDisposable without a name: dom0 names it, skipping names held outside; a bad name is still refused', async () => {
  const f = testFleet();
  const h = await startHost(undefined, { ...f, qubes: [...f.qubes, { name: 'ai-disp2', klass: 'AppVM', label: 'red', template: 'debian' }] });
  try {
    const first = await call(h, 'qmcp.CreateDisposable+ai-dvm', {});
    assert.equal(first.status, 0, first.stderr);
    assert.deepEqual(JSON.parse(first.stdout), { name: 'ai-disp1', klass: 'DispVM', template: 'ai-dvm', auto_cleanup: true });
    const second = await call(h, 'qmcp.CreateDisposable+ai-dvm', { autoCleanup: false });
    assert.equal(JSON.parse(second.stdout).name, 'ai-disp3');
    assert.ok(h.vm('ai-disp3')?.tags.includes('ai-managed'));
    // the agent's own mistakes in a name it gave: told, with the code, before any lookup
    for (const [bad, code] of [[{ name: null }, 'name_invalid'], [{ name: 'disp9' }, 'name_prefix'], [{ name: '' }, 'name_invalid']] as const) {
      const r = await call(h, 'qmcp.CreateDisposable+ai-dvm', bad);
      assert.equal(r.status, 1, JSON.stringify(bad));
      assert.equal((JSON.parse(r.stdout) as { error: { code: string } }).error.code, code, JSON.stringify(bad));
    }
    assert.deepEqual(await call(h, 'qmcp.CreateDisposable+ai-dvm', { name: 'ai-x', colour: 'red' }), REFUSED, 'an unknown key');
  } finally {
    await h.done();
  }
});

test('two unnamed creates that both took their snapshot before either made anything get two names', async () => {
  const h = await startHost();
  try {
    // the barrier: neither call gets the budget lock until both are waiting for it
    let waiting = 0;
    let release: () => void = () => undefined;
    const both = new Promise<void>((r) => (release = r));
    const budgetLock = async (root: string, waitMs: number): Promise<HeldLock | null> => {
      if (++waiting === 2) release();
      await both;
      return acquireBudgetLock(root, waitMs);
    };
    const [a, b] = await Promise.all([call(h, 'qmcp.CreateDisposable+ai-dvm', {}, { budgetLock }), call(h, 'qmcp.CreateDisposable+ai-dvm', {}, { budgetLock })]);
    assert.equal(a.status, 0, a.stderr);
    assert.equal(b.status, 0, b.stderr);
    assert.deepEqual([JSON.parse(a.stdout).name, JSON.parse(b.stdout).name].sort(), ['ai-disp1', 'ai-disp2']);
  } finally {
    await h.done();
  }
});
