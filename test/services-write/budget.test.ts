import { test } from 'node:test';
import assert from 'node:assert/strict';
import { footprint, used } from '../../src/dom0/create/budget.js';
import type { WriteDeps } from '../../src/dom0/create/deps.js';
import { readWriteSettings } from '../../src/dom0/create/settings.js';
import type { HeldLock } from '../../src/dom0/lockfile.js';
import { raceCreates } from '../../verify/concurrency/barrier.js';
import type { Racer } from '../../verify/concurrency/barrier.js';
import { BASE_SETTINGS, GiB, REFUSED, auditValid, call, json, names, startHost, testFleet } from './helpers.js';
import type { Host } from './helpers.js';

async function usedNow(h: Host): Promise<number> {
  return used(h.qubesd, readWriteSettings(h.root, () => undefined), 'qmcp-owner-mcp-control');
}

test('caps: a projected use equal to the cap is allowed, one byte over is not', async () => {
  const h = await startHost();
  try {
    const base = await usedNow(h);
    const child = (await footprint(h.qubesd, 'ai-box')).total;
    h.writeSettings({ ...BASE_SETTINGS, poolCapBytes: base + child - 1 });
    const over = await call(h, 'qmcp.Create+', { name: 'ai-c1', template: 'ai-tpl' });
    assert.equal(over.status, 1);
    assert.equal((json(over)['error'] as { code: string }).code, 'over-budget');
    assert.equal(h.vm('ai-c1'), undefined, 'rolled back');
    h.writeSettings({ ...BASE_SETTINGS, poolCapBytes: base + child });
    assert.equal((await call(h, 'qmcp.Create+', { name: 'ai-c1', template: 'ai-tpl' })).status, 0);
    assert.equal(await usedNow(h), base + child);
    assert.equal(await auditValid(h), true);
  } finally {
    await h.done();
  }
});

test('caps: per-qube private cap; an unreadable or non-integer cap refuses every create', async () => {
  const h = await startHost({ ...BASE_SETTINGS, privateCapBytes: 2 * GiB - 1 });
  try {
    const before = names(h);
    const r = await call(h, 'qmcp.Create+', { name: 'ai-p', template: 'ai-tpl' });
    assert.equal(r.status, 1);
    for (const bad of ['100', 1.5, true, -1, 0, 2 ** 60]) {
      h.writeSettings({ ...BASE_SETTINGS, poolCapBytes: bad });
      assert.deepEqual(await call(h, 'qmcp.Create+', { name: 'ai-p', template: 'ai-tpl' }), REFUSED, `poolCap ${String(bad)}`);
      h.writeSettings({ ...BASE_SETTINGS, privateCapBytes: bad });
      assert.deepEqual(await call(h, 'qmcp.Clone+ai-box', { name: 'ai-p' }), REFUSED, `privateCap ${String(bad)}`);
    }
    h.writeSettings({ ...BASE_SETTINGS, restrictionTags: 'ai-lock' });
    assert.deepEqual(await call(h, 'qmcp.Clone+ai-box', { name: 'ai-p' }), REFUSED, 'malformed restriction list');
    assert.deepEqual(names(h), before);
  } finally {
    await h.done();
  }
});

/** The budget lock removed: every create goes ahead at once. */
const NO_LOCK = (): Promise<HeldLock> => Promise.resolve({ release: () => Promise.resolve() });

/**
 * Four creates with room for two, racing behind the barrier; what went wrong.
 * `lock` replaces the budget lock (the weakened variant); default the real one.
 */
async function raceAtTheEdge(lock?: WriteDeps['budgetLock']): Promise<string[]> {
  const h = await startHost();
  try {
    const base = await usedNow(h);
    const child = (await footprint(h.qubesd, 'ai-box')).total;
    h.writeSettings({ ...BASE_SETTINGS, poolCapBytes: base + 2 * child });
    const results = await raceCreates(
      h.sim.socketPath,
      'ai-managed',
      ['ai-r1', 'ai-r2', 'ai-r3', 'ai-r4'].map((name) => (r: Racer) => call(h, 'qmcp.Create+', { name, template: 'ai-tpl' }, { qubesd: r.qubesd, budgetLock: lock ?? r.budgetLock })),
    );
    const problems: string[] = [];
    const statuses = results.map((r) => r.status).sort();
    if (JSON.stringify(statuses) !== '[0,0,1,1]') problems.push(`statuses ${JSON.stringify(statuses)}, not two made and two refused: ${JSON.stringify(results)}`);
    for (const r of results.filter((x) => x.status === 1)) if (!/over-budget/.test(r.stdout)) problems.push(`refused for another reason: ${r.stdout}`);
    const use = await usedNow(h);
    if (use > base + 2 * child) problems.push(`use ${use} over the cap ${base + 2 * child}`);
    const made = names(h).filter((n) => /^ai-r[0-9]$/.test(n));
    if (made.length !== 2) problems.push(`${made.length} qubes made: ${made.join(', ')}`);
    if (!(await auditValid(h))) problems.push('audit chain broken');
    return problems;
  } finally {
    await h.done();
  }
}

test('caps: concurrent creates at the edge, racing behind a barrier, never pass the cap', async () => {
  assert.deepEqual(await raceAtTheEdge(), []);
});

test('caps: the race is real: without the budget lock the same creates pass the cap', async () => {
  const problems = await raceAtTheEdge(NO_LOCK);
  assert.ok(problems.some((p) => /over the cap/.test(p)), JSON.stringify(problems));
});

test('caps: pool_figures and the create budget count the same qubes; a hand-made umbrella+sink hybrid counts in neither', async () => {
  const fleet = testFleet();
  // outside the agent's world (seen as neither), however large
  fleet.qubes.push({ name: 'ai-hybrid', klass: 'StandaloneVM', label: 'red', tags: ['ai-managed', 'ai-dump', 'ai-full'] });
  const h = await startHost(BASE_SETTINGS, fleet);
  try {
    const child = (await footprint(h.qubesd, 'ai-box')).total;
    const figures = async (): Promise<{ used: number; headroom: number }> => json(await call(h, 'qmcp.PoolFigures')) as { used: number; headroom: number };
    assert.equal((await figures()).used, await usedNow(h));
    // exactly the room pool_figures shows for one more qube
    h.writeSettings({ ...BASE_SETTINGS, poolCapBytes: (await figures()).used + child });
    assert.equal((await figures()).headroom, child);
    const r = await call(h, 'qmcp.Create+', { name: 'ai-fits', template: 'ai-tpl' });
    assert.equal(r.status, 0, r.stdout);
    const used = await usedNow(h);
    assert.deepEqual(await figures(), { used, live: used, tombstoned: 0, cap: used, headroom: 0 });
  } finally {
    await h.done();
  }
});
