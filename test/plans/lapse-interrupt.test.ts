/**
 * A plan's two ends nobody writes at the time: a lapse (the clock ends it)
 * gets its audit entry once dom0 sees it, and a plan whose operator command
 * died mid-run reads as interrupted, for good. Each with the weakened store
 * it catches.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { pathToFileURL } from 'node:url';
import { test } from 'node:test';
import type { AuditLog } from '../../src/dom0/audit/index.js';
import { processStartTime } from '../../src/dom0/gate/store.js';
import { listLines } from '../../src/dom0/plans/operator.js';
import * as store from '../../src/dom0/plans/store.js';
import type { PlanRecord } from '../../src/dom0/plans/store.js';
import { weakenedFile } from '../../verify/weakened-module.js';

type Store = typeof store;
type GateEntry = Parameters<AuditLog['gate']>[0];

const HOUR = 3_600_000;

function plan(id: string, over: Partial<PlanRecord> = {}): PlanRecord {
  const submitted = new Date(Date.now() - 2 * HOUR);
  return {
    id,
    principal: 'mcp-control',
    correlation: `corr-${id}`,
    purpose: 'p',
    submitted: submitted.toISOString(),
    lapses: new Date(submitted.getTime() + HOUR).toISOString(),
    digest: 'd',
    steps: [{ operation: 'start', argument: 'ai-box', payload: '' }],
    state: 'pending',
    results: [{ state: 'pending' }],
    ...over,
  };
}

function recorder(): { audit: Pick<AuditLog, 'gate'>; entries: GateEntry[] } {
  const entries: GateEntry[] = [];
  const audit = { gate: async (e: GateEntry) => (entries.push(e), { correlation: e.correlation ?? '' }) } as unknown as Pick<AuditLog, 'gate'>;
  return { audit, entries };
}

async function weakenedStore(guard: string, to: string): Promise<Store> {
  return (await import(pathToFileURL(weakenedFile('dom0/plans/store', guard, to)).href)) as Store;
}

test('a plan that lapsed unanswered gets one plan audit entry under its correlation, and reads lapsed', async () => {
  const root = mkdtempSync(join(tmpdir(), 'qmcp-plan-lapse-'));
  try {
    const check = async (s: Store): Promise<GateEntry[]> => {
      rmSync(store.plansDir(root), { recursive: true, force: true });
      s.writePlan(root, plan('1'));
      s.writePlan(root, plan('2', { lapses: new Date(Date.now() + HOUR).toISOString() }));
      const { audit, entries } = recorder();
      await s.noteLapses(root, 'mcp-control', audit, new Date());
      await s.noteLapses(root, 'mcp-control', audit, new Date());
      return entries;
    };
    const entries = await check(store);
    assert.deepEqual(
      entries.map((e) => [e.kind, e.correlation, e.result, e.detail]),
      [['plan', 'corr-1', 'refused', 'plan 1 lapsed']],
    );
    assert.equal(store.readPlan(root, 'mcp-control', '1')?.state, 'lapsed');
    assert.equal(store.planState(store.readPlan(root, 'mcp-control', '2') as PlanRecord, new Date()), 'pending');

    const weak = await weakenedStore("if (p.state !== 'pending' || planState(p, now) !== 'lapsed')", 'if (true)');
    assert.deepEqual(await check(weak), [], 'weakened: no lapse recorded');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a plan whose runner died mid-run reads interrupted in the store and the operator list; a live runner reads running', async () => {
  const root = mkdtempSync(join(tmpdir(), 'qmcp-plan-runner-'));
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  try {
    const pid = child.pid as number;
    const startTime = processStartTime(pid);
    assert.ok(startTime !== null);
    const running = plan('1', { state: 'running', results: [{ state: 'running' }], runner: { pid, startTime } });
    store.writePlan(root, running);
    const now = new Date();
    assert.equal(store.planState(running, now), 'running');
    // a reused pid is not the runner: another start time
    assert.equal(store.planState({ ...running, runner: { pid, startTime: `${startTime}0` } }, now), 'interrupted');

    child.kill('SIGKILL');
    await once(child, 'exit');
    for (const state of ['running', 'approved'] as const) assert.equal(store.planState({ ...running, state }, now), 'interrupted', state);
    assert.equal(store.planState({ ...running, state: 'done' }, now), 'done');
    assert.match(listLines(root, now).join('\n'), /^1 {2}interrupted {2}/);

    const weak = await weakenedStore("if ((p.state === 'approved' || p.state === 'running') && runnerGone(p))", 'if (false)');
    assert.equal(weak.planState(running, now), 'running', 'weakened: a dead runner not noticed');
  } finally {
    child.kill('SIGKILL');
    rmSync(root, { recursive: true, force: true });
  }
});
