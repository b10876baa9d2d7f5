import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requestDigest } from '../../src/dom0/gate/digest.js';
import type { CallBinding } from '../../src/dom0/gate/digest.js';
import type { NewRequest } from '../../src/dom0/gate/store.js';
import { AnswerRefused, createRequest, endRequest, listRequests, processStartTime, takeAnswer, writeAnswer } from '../../src/dom0/gate/store.js';
import type { HeldLock } from '../../src/dom0/lockfile.js';
import { acquireLock } from '../../src/dom0/lockfile.js';
import { Barrier } from '../../verify/concurrency/barrier.js';

const BINDING: CallBinding = { principal: 'p', operation: 'remove', argument: 'ai-x', payload: Buffer.alloc(0), settingsDigest: 's', modelHash: 'm' };

test('the request digest covers every field, framed so no two calls collide', () => {
  const base = requestDigest(BINDING);
  assert.match(base, /^[0-9a-f]{64}$/);
  const variants: CallBinding[] = [
    { ...BINDING, principal: 'q' },
    { ...BINDING, operation: 'start' },
    { ...BINDING, argument: 'ai-y' },
    { ...BINDING, payload: Buffer.from(' ') },
    { ...BINDING, settingsDigest: 't' },
    { ...BINDING, modelHash: 'n' },
    // the same bytes split differently between fields
    { ...BINDING, operation: 'removeai-x', argument: '' },
    { ...BINDING, argument: '', payload: Buffer.from('ai-x') },
  ];
  const digests = new Set([base, ...variants.map(requestDigest)]);
  assert.equal(digests.size, variants.length + 1);
});

function fields(principal = 'p', deadlineMs = 60_000): NewRequest {
  const now = Date.now();
  return { principal, operation: 'remove', argument: 'ai-x', payload: '', qubes: ['ai-x'], digest: 'd', created: new Date(now).toISOString(), expires: new Date(now + deadlineMs).toISOString() };
}

const audit = (): Promise<string> => Promise.resolve('c'.repeat(32));

test('store: a request is 0700-private, typable, answered once, and taken once', async () => {
  const dir = join(mkdtempSync(join(tmpdir(), 'qmcp-store-')), 'approvals');
  try {
    const r = await createRequest(dir, fields(), { cap: 4, audit });
    assert.ok(r);
    assert.match(r.id, /^[a-z0-9]{8}$/);
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    assert.equal(r.startTime, processStartTime(process.pid));
    assert.deepEqual((await listRequests(dir, new Date())).map((x) => x.state), ['pending']);
    await writeAnswer(dir, r.id, { decision: 'allow', by: 'op', how: 'cli' }, new Date());
    assert.deepEqual((await listRequests(dir, new Date())).map((x) => x.state), ['answered']);
    await assert.rejects(writeAnswer(dir, r.id, { decision: 'deny', by: 'op', how: 'cli' }, new Date()), (e: unknown) => e instanceof AnswerRefused && e.reason === 'answered');
    const taken = await takeAnswer(dir, r.id);
    assert.equal(typeof taken === 'object' && taken?.decision, 'allow');
    assert.equal(await takeAnswer(dir, r.id), null, 'taken once');
    assert.equal(await endRequest(dir, r.id), null);
    assert.deepEqual(readdirSync(dir).filter((f) => !f.endsWith('.lock')), []);
    await assert.rejects(writeAnswer(dir, r.id, { decision: 'allow', by: 'op', how: 'cli' }, new Date()), (e: unknown) => e instanceof AnswerRefused && e.reason === 'unknown');

    const late = await createRequest(dir, fields('p', 10), { cap: 4, audit });
    assert.ok(late);
    await assert.rejects(writeAnswer(dir, late.id, { decision: 'allow', by: 'op', how: 'cli' }, new Date(Date.now() + 1000)), (e: unknown) => e instanceof AnswerRefused && e.reason === 'expired');
    assert.deepEqual((await listRequests(dir, new Date(Date.now() + 1000))).map((x) => x.state), ['expired']);
  } finally {
    rmSync(join(dir, '..'), { recursive: true, force: true });
  }
});

/**
 * CAP + 1 requests of one principal racing: each holds between its count
 * and its record until no racer is still running (every other one is held
 * there too, is waiting for the lock, or has finished). With the lock the
 * holder goes on as soon as the others queue behind it; without it every
 * racer counts before any records, so all pass the cap together. `lock`
 * replaces the lock (the weakened variant). Resolves to how many were recorded.
 */
async function race(cap: number, lock?: (path: string) => Promise<HeldLock>): Promise<number> {
  const dir = join(mkdtempSync(join(tmpdir(), 'qmcp-cap-')), 'approvals');
  const barrier = new Barrier(cap + 1);
  try {
    const made = await Promise.all(
      Array.from({ length: cap + 1 }, async (_, i) => {
        try {
          return await createRequest(dir, fields(), {
            cap,
            audit,
            lock: async (path) => {
              barrier.locking(i);
              try {
                return await (lock ?? ((p: string) => acquireLock(p, 60_000)))(path);
              } finally {
                barrier.running(i);
              }
            },
            counted: () => barrier.hold(i),
          });
        } finally {
          barrier.done(i);
        }
      }),
    );
    const recorded = (await listRequests(dir, new Date())).length;
    assert.equal(recorded, made.filter((m) => m !== null).length);
    return recorded;
  } finally {
    rmSync(join(dir, '..'), { recursive: true, force: true });
  }
}

test('pending cap: CAP + 1 racing requests behind a barrier record exactly CAP', async () => {
  assert.equal(await race(3), 3);
});

test('pending cap: the race is real: without the lock all CAP + 1 are recorded', async () => {
  const noLock = (): Promise<HeldLock> => Promise.resolve({ release: () => Promise.resolve() });
  assert.equal(await race(3, noLock), 4);
});
