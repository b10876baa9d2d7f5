/**
 * The answer handoff: the operator's CLI writes an answer while the waiting
 * service ends the request (its deadline, a withdrawal). Whatever the
 * interleaving, the CLI reports the answer as counted exactly when the
 * service takes it. A barrier holds the CLI at each point of its write
 * while the service ends the request, then lets it go on; each weakened
 * store is caught at the point it gets wrong.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as store from '../../src/dom0/gate/store.js';
import type { AnswerPoint } from '../../src/dom0/gate/store.js';
import { weakenedFile } from './helpers.js';

type Store = typeof store;

const RETRACT = "if (await unlinkIfPresent(answerPath(dir, id)))\n        throw new AnswerRefused('expired');";

/** Both sides' view of one handoff: whether the CLI said the answer counts, and whether the service took it. */
async function handoff(s: Store, point: AnswerPoint): Promise<{ cliCounted: boolean; serviceTook: boolean }> {
  const dir = join(mkdtempSync(join(tmpdir(), 'qmcp-handoff-')), 'approvals');
  try {
    const now = Date.now();
    const r = await s.createRequest(
      dir,
      { principal: 'p', operation: 'remove', argument: 'ai-x', payload: '', qubes: ['ai-x'], digest: 'd', created: new Date(now).toISOString(), expires: new Date(now + 60_000).toISOString() },
      { cap: 4, audit: () => Promise.resolve('c'.repeat(32)) },
    );
    assert.ok(r);
    // the barrier: the CLI stops at `point` and waits there until the service has ended the request
    let atPoint!: () => void;
    const reached = new Promise<void>((resolve) => (atPoint = resolve));
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const cli = s
      .writeAnswer(dir, r.id, { decision: 'allow', by: 'op', how: 'cli' }, new Date(), async (p) => {
        if (p !== point) return;
        atPoint();
        await released;
      })
      .then(
        () => true,
        (e: unknown) => {
          assert.ok(e instanceof s.AnswerRefused, String(e));
          return false;
        },
      );
    await reached;
    const late = await s.endRequest(dir, r.id);
    release();
    return { cliCounted: await cli, serviceTook: late !== null && late !== 'malformed' && late.decision === 'allow' };
  } finally {
    rmSync(join(dir, '..'), { recursive: true, force: true });
  }
}

async function weakened(to: string): Promise<Store> {
  return (await import(pathToFileURL(weakenedFile('dom0/gate/store', RETRACT, to)).href)) as Store;
}

test('answer handoff: the service ends the request after the CLI read it, before the answer is linked: refused on both sides', async () => {
  assert.deepEqual(await handoff(store, 'read'), { cliCounted: false, serviceTook: false });
  // weakened: the CLI never takes back an answer nobody will take, and reports it as counted
  assert.deepEqual(await handoff(await weakened(''), 'read'), { cliCounted: true, serviceTook: false });
});

test('answer handoff: the service ends the request after the answer is linked: it takes the answer, and the CLI says it counts', async () => {
  assert.deepEqual(await handoff(store, 'linked'), { cliCounted: true, serviceTook: true });
  // weakened: the CLI gives up on a gone request without checking whether the service took its answer
  const blind = await weakened("await unlinkIfPresent(answerPath(dir, id));\n    throw new AnswerRefused('expired');");
  assert.deepEqual(await handoff(blind, 'linked'), { cliCounted: false, serviceTook: true });
});
