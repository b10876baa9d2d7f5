import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pathToFileURL } from 'node:url';
import type { serviceTable } from '../../src/dom0/services/index.js';
import { compiled, weakenedFile } from '../../verify/weakened-module.js';
import { BASE_SETTINGS, REFUSED, auditValid, call, json, startHost } from './helpers.js';
import type { CallOptions, Host } from './helpers.js';

const error = (r: { status: number; stdout: string }): string => {
  assert.equal(r.status, 1, r.stdout);
  return (json(r as never)['error'] as { code: string }).code;
};
const cycle = async (h: Host, q: string): Promise<void> => {
  await h.qubesd.call('admin.vm.Start', q);
  await h.qubesd.call('admin.vm.Kill', q);
};
const keep = (h: Host, q: string): number | undefined => h.vm(q)?.volumes['private']?.revisions_to_keep;

/** The service table with the checkpoint services' module weakened: GUARD replaced by TO. */
async function weakened(guard: string, to: string): Promise<CallOptions> {
  const module = weakenedFile('dom0/services/checkpoint', guard, to);
  const index = weakenedFile('dom0/services/index', 'erased(revertService),', 'erased(revertService),', { [compiled('dom0/services/checkpoint')]: module });
  const table = ((await import(pathToFileURL(index).href)) as { serviceTable: typeof serviceTable }).serviceTable;
  return { serviceTable: table };
}

async function checkpointThenRun(h: Host, opts: CallOptions = {}): Promise<void> {
  const r = await call(h, 'qmcp.Checkpoint+ai-box', '', opts);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.deepEqual(json(r), { name: 'ai-box', revisions_to_keep: 2 });
  await cycle(h, 'ai-box');
}

test('checkpoint then revert: the revision the next stop made, the mark gone, revisions_to_keep back', async () => {
  const h = await startHost();
  try {
    const before = json(await call(h, 'qmcp.PoolFigures', ''))['used'] as number;
    await checkpointThenRun(h);
    assert.equal(h.vm('ai-box')?.features['qmcp-checkpoint'], '- 1');
    assert.equal(keep(h, 'ai-box'), 2);
    // the extra revision counts in the budget: one more private volume's worth
    const size = h.vm('ai-box')?.volumes['private']?.size ?? 0;
    assert.equal(json(await call(h, 'qmcp.PoolFigures', ''))['used'], before + size);
    const r = await call(h, 'qmcp.Revert+ai-box', '');
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.deepEqual(json(r), { name: 'ai-box', revision: '1' });
    assert.equal(h.vm('ai-box')?.features['qmcp-checkpoint'], undefined);
    assert.equal(keep(h, 'ai-box'), 1);
    assert.equal(json(await call(h, 'qmcp.PoolFigures', ''))['used'], before);
    // used up: another revert has no checkpoint
    assert.equal(error(await call(h, 'qmcp.Revert+ai-box', '')), 'no-checkpoint');
    assert.equal(await auditValid(h), true);
  } finally {
    await h.done();
  }
});

test('a checkpoint anchored on an existing revision finds the one after it, and says when it is gone', async () => {
  const h = await startHost();
  try {
    await cycle(h, 'ai-box');
    await cycle(h, 'ai-box');
    await checkpointThenRun(h);
    assert.equal(h.vm('ai-box')?.features['qmcp-checkpoint'], '2 1');
    await cycle(h, 'ai-box');
    // two stops since with two kept: the anchor is pruned, so is the checkpoint's revision's place
    assert.equal(error(await call(h, 'qmcp.Revert+ai-box', '')), 'checkpoint-lost');
    assert.equal(h.vm('ai-box')?.volumes['private']?.revisions?.length, 2, 'nothing reverted');
  } finally {
    await h.done();
  }
});

test('without an anchor a checkpoint holds only while fewer revisions are kept than the volume keeps', async () => {
  const h = await startHost();
  try {
    await checkpointThenRun(h);
    await cycle(h, 'ai-box');
    assert.equal(error(await call(h, 'qmcp.Revert+ai-box', '')), 'checkpoint-lost');
  } finally {
    await h.done();
  }
});

test('refusal paths: running, no run since, a disposable, no budget, and scope and tier alike', async () => {
  // disposables born full, so that only being one refuses them
  const h = await startHost({ ...BASE_SETTINGS, birthCeiling: 'full' });
  try {
    await h.qubesd.call('admin.vm.Start', 'ai-box');
    assert.equal(error(await call(h, 'qmcp.Checkpoint+ai-box', '')), 'running');
    await h.qubesd.call('admin.vm.Kill', 'ai-box');
    assert.equal(error(await call(h, 'qmcp.Revert+ai-box', '')), 'no-checkpoint');
    assert.equal((await call(h, 'qmcp.Checkpoint+ai-box', '')).status, 0);
    assert.equal(error(await call(h, 'qmcp.Revert+ai-box', '')), 'unchanged');
    await h.qubesd.call('admin.vm.Start', 'ai-box');
    assert.equal(error(await call(h, 'qmcp.Revert+ai-box', '')), 'running');
    await h.qubesd.call('admin.vm.Kill', 'ai-box');
    const d = await call(h, 'qmcp.CreateDisposable+ai-dvm', { name: 'ai-d1' });
    assert.equal(d.status, 0, d.stdout + d.stderr);
    assert.equal(error(await call(h, 'qmcp.Checkpoint+ai-d1', '')), 'no-revisions');
    // ai-read is read tier, ai-execbox exec; vault outside; ai-nosuch absent: all the one refusal
    for (const q of ['ai-read', 'ai-execbox', 'vault', 'ai-nosuch']) {
      assert.deepEqual(await call(h, `qmcp.Checkpoint+${q}`, ''), REFUSED, q);
      assert.deepEqual(await call(h, `qmcp.Revert+${q}`, ''), REFUSED, q);
    }
    assert.deepEqual(await call(h, 'qmcp.Checkpoint+ai-locked', 'x'), REFUSED, 'a payload is malformed');
    const used = json(await call(h, 'qmcp.PoolFigures', ''))['used'] as number;
    h.writeSettings({ ...BASE_SETTINGS, birthCeiling: 'full', poolCapBytes: used });
    assert.equal(error(await call(h, 'qmcp.Checkpoint+ai-locked', '')), 'over-budget');
    assert.equal(keep(h, 'ai-locked'), undefined, 'nothing changed');
    const { poolCapBytes: _, ...noCap } = BASE_SETTINGS;
    h.writeSettings(noCap);
    assert.deepEqual(await call(h, 'qmcp.Checkpoint+ai-locked', ''), REFUSED);
  } finally {
    await h.done();
  }
});

test('weakened: a checkpoint without the halted check, a revert that takes the oldest revision when the anchor is gone, a checkpoint without the budget check: each caught', async () => {
  const h = await startHost();
  try {
    const noHalt = await weakened("if ((await powerState(ctx.qubesd, q.name)) !== 'Halted') {", 'if (false) {');
    await h.qubesd.call('admin.vm.Start', 'ai-box');
    assert.equal((await call(h, 'qmcp.Checkpoint+ai-box', '', noHalt)).status, 0, 'the weakened checkpoint took a running qube');
    await h.qubesd.call('admin.vm.Kill', 'ai-box');

    // a missing anchor read as the oldest one
    const oldest = await weakened('const at = revisions.indexOf(mark.anchor);', 'const at = Math.max(0, revisions.indexOf(mark.anchor));');
    await cycle(h, 'ai-box');
    await cycle(h, 'ai-box');
    assert.equal((await call(h, 'qmcp.Checkpoint+ai-box', '')).status, 0);
    await cycle(h, 'ai-box');
    await cycle(h, 'ai-box');
    assert.equal((await call(h, 'qmcp.Revert+ai-box', '', oldest)).status, 0, 'the weakened revert went to a revision that is not the checkpoint');

    const noBudget = await weakened('if (now + (keepSet - Math.max(keep, 1)) * size > settings.poolCap)', 'if (false)');
    const used = json(await call(h, 'qmcp.PoolFigures', ''))['used'] as number;
    h.writeSettings({ ...BASE_SETTINGS, poolCapBytes: used });
    assert.equal((await call(h, 'qmcp.Checkpoint+ai-locked', '', noBudget)).status, 0, 'the weakened checkpoint went past the cap');
  } finally {
    await h.done();
  }
});
