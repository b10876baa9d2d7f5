import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { approvalsDir, createRequest } from '../../src/dom0/gate/store.js';
import { askTarget, decidingArgument, seededDecision, startAnswerer } from '../../verify/gate/answerer.js';
import type { WaitingCall } from '../../verify/gate/answerer.js';
import { weakenedCopy } from '../../verify/weakened-module.js';

const here = dirname(fileURLToPath(import.meta.url));

const call = (argument: string): WaitingCall => ({ kind: 'request', source: 'mcp-control', what: 'remove', argument, payload: '', qubes: [argument] });

test('the answerer decides from the seed and the call alone, about half of the calls each way', () => {
  const names = Array.from({ length: 400 }, (_, i) => `ai-q${i}`);
  const allowed = names.filter((n) => seededDecision(7, call(n)) === 'allow').length;
  assert.ok(allowed > 150 && allowed < 250, `${allowed} of 400 allowed`);
  for (const n of names.slice(0, 50)) assert.equal(seededDecision(7, call(n)), seededDecision(7, { ...call(n) }));
  assert.ok(names.some((n) => seededDecision(7, call(n)) !== seededDecision(8, call(n))), 'another seed answers otherwise');
  assert.ok(names.some((n) => seededDecision(7, call(n)) !== seededDecision(7, { ...call(n), payload: 'eA==' })), 'the payload is part of the call');
});

test('a sink push is decided alike whatever fresh directory each machine chose for it', () => {
  // two machines making the same copy pick different directories (their clocks and random suffixes)
  const push = (i: number): WaitingCall => ({ kind: 'ask', source: 'ai-work', what: 'qmcp.SinkPush', argument: `2026120${i % 10}T0${i % 10}0000Z.${i.toString(16).padStart(16, '0')}`, payload: '', qubes: ['ai-sink'] });
  const pushes = Array.from({ length: 64 }, (_, i) => push(i));
  for (const seed of [1, 2, 3, 20261203]) {
    assert.equal(new Set(pushes.map((c) => seededDecision(seed, c))).size, 1, `seed ${seed}`);
    // what would catch it: the raw argument hashed, as before
    const raw = (c: WaitingCall): string => seededDecision(seed, { ...c, what: 'qmcp.SinkPush ' }, 0.5);
    assert.equal(new Set(pushes.map(raw)).size, 2, `seed ${seed}: the raw names decide both ways`);
  }
  // still part of the decision: the sink, the source, and any argument that is not a push name
  assert.ok([1, 2, 3, 4, 5, 6, 7, 8].some((s) => seededDecision(s, push(1)) !== seededDecision(s, { ...push(1), qubes: ['ai-sink2'] })), 'the sink decides');
  assert.ok([1, 2, 3, 4, 5, 6, 7, 8].some((s) => seededDecision(s, push(1)) !== seededDecision(s, { ...push(1), source: 'ai-other' })), 'the source decides');
  assert.equal(decidingArgument({ kind: 'ask', what: 'qmcp.SinkPush', argument: 'not-a-push' }), 'not-a-push');
  assert.equal(decidingArgument({ kind: 'ask', what: 'qubes.Filecopy', argument: push(1).argument }), push(1).argument);
  assert.equal(decidingArgument({ kind: 'request', what: 'qmcp.SinkPush', argument: push(1).argument }), push(1).argument);
});

test('an approved dialog goes to the qube the caller named, or to dom0 when that is the only choice; otherwise it is denied', () => {
  assert.equal(askTarget({ target: 'ai-box', targets: ['ai-box', 'ai-peer'] }), 'ai-box');
  assert.equal(askTarget({ target: 'ai-box', targets: ['dom0'] }), 'dom0');
  assert.equal(askTarget({ target: 'ai-box', targets: ['ai-peer'] }), null);
});

test('the answerer stops at once, even while a barrier it waits on never opens', async () => {
  const root = await mkdtemp(join(tmpdir(), 'qmcp-answerer-'));
  try {
    const now = new Date();
    const fields = { principal: 'mcp-control', operation: 'remove', argument: 'ai-box', payload: '', qubes: ['ai-box'], digest: '0'.repeat(64), created: now.toISOString(), expires: new Date(now.getTime() + 60_000).toISOString() };
    assert.ok(await createRequest(approvalsDir(root), fields, { cap: 4, audit: async () => 'c' }));
    let asked!: () => void;
    const waiting = new Promise<void>((resolve) => (asked = resolve));
    const a = startAnswerer({
      root,
      seed: 1,
      decide: () => {
        asked();
        return new Promise(() => undefined);
      },
    });
    await waiting;
    await a.stop();
    assert.deepEqual(a.errors, []);
    assert.deepEqual(a.answered.map((x) => x.decision), ['deny'], 'a barrier cut short denies');
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('between calls the answerer looks seldom; a call made during one is answered at once', async () => {
  // weakened: during() counts the call but leaves the answerer in its idle wait
  const { startAnswerer: sleepy } = (await import(pathToFileURL(weakenedCopy(join(here, '..', '..', 'verify', 'gate', 'answerer.js'), 'inFlight++;\n            wake();', 'inFlight++;')).href)) as { startAnswerer: typeof startAnswerer };
  const root = await mkdtemp(join(tmpdir(), 'qmcp-answerer-'));
  const request = async (argument: string): Promise<void> => {
    const now = new Date();
    const fields = { principal: 'mcp-control', operation: 'remove', argument, payload: '', qubes: [argument], digest: '0'.repeat(64), created: now.toISOString(), expires: new Date(now.getTime() + 600_000).toISOString() };
    assert.ok(await createRequest(approvalsDir(root), fields, { cap: 4, audit: async () => 'c' }));
  };
  let ended = false;
  const answered = (a: ReturnType<typeof startAnswerer>, n: number): Promise<void> =>
    new Promise((resolve) => {
      const look = (): void => void (a.answered.length >= n ? resolve() : ended || setTimeout(look, 5));
      look();
    });
  // idle, it looks once a day; its first look (at its start) answers the request already there
  const firstLooked = async (start: typeof startAnswerer, argument: string, done: number): Promise<ReturnType<typeof startAnswerer>> => {
    await request(argument);
    const a = start({ root, seed: 1, idleMs: 24 * 3600_000 });
    await answered(a, done);
    return a;
  };
  try {
    const a = await firstLooked(startAnswerer, 'ai-zero', 1);
    await request('ai-one');
    await a.during(answered(a, 2));
    assert.deepEqual(a.answered.map((x) => x.argument), ['ai-zero', 'ai-one']);
    await a.stop();
    // the weakened one waits out its idle look: not answered while the call is in flight (it would be in a day)
    const b = await firstLooked(sleepy, 'ai-two', 1);
    await request('ai-three');
    const seen = await Promise.race([b.during(answered(b, 2)).then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 2000))]);
    assert.equal(seen, false, 'the weakened answerer answered without a look');
    await b.stop();
  } finally {
    ended = true;
    await rm(root, { recursive: true, force: true });
  }
});
