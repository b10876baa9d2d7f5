/**
 * The action gate on the demo host, its settings the list of both principals: a remove
 * that waits (with progress), is approved with `qmcp dom0 approvals allow`
 * and completes; one denied, which is the uniform refusal and changes
 * nothing. The same walk prints docs/action-gate.md's transcript.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { REFUSAL } from '../../src/principal/results.js';
import type { Entry } from '../../scripts/gate-walk.js';
import { PLAN_STEPS, walkGate } from '../../scripts/gate-walk.js';

type AgentEntry = Extract<Entry, { who: 'agent' }>;
type OperatorEntry = Extract<Entry, { who: 'operator' }>;

test('the demo gate: a remove approved from dom0 completes, one denied is the uniform refusal; a plan reviewed and run', async () => {
  const walk = await walkGate();
  const agent = walk.entries.filter((e): e is AgentEntry => e.who === 'agent');
  const operator = walk.entries.filter((e): e is OperatorEntry => e.who === 'operator');

  const [created, allowed, denied] = agent;
  assert.notEqual(created?.result.isError, true, JSON.stringify(created?.result));
  assert.equal(created?.progress, 0);

  assert.deepEqual([allowed?.tool, allowed?.args], ['qube_remove', { qube: 'ai-scratch' }]);
  assert.deepEqual(allowed?.result.structuredContent, { qube: 'ai-scratch', removed: true });
  assert.ok((allowed?.progress ?? 0) > 0, 'progress while it waited');

  assert.deepEqual([denied?.tool, denied?.args], ['qube_remove', { qube: 'ai-full-box' }]);
  assert.deepEqual(denied?.result, REFUSAL);
  assert.ok((denied?.progress ?? 0) > 0, 'progress while it waited');
  assert.ok(walk.finalQubes.includes('ai-full-box'), 'the denied remove changed nothing');
  assert.ok(!walk.finalQubes.includes('ai-scratch'), 'the approved remove happened');

  // the operator saw each request in list and show, and each answer counted
  const verbs = operator.map((e) => [e.argv[2], e.argv[3], e.status]);
  const asked = [['approvals', 'list', 0], ['approvals', 'show', 0], ['approvals', 'allow', 0], ['approvals', 'list', 0], ['approvals', 'show', 0], ['approvals', 'deny', 0]];
  assert.deepEqual(verbs, walk.planned ? [...asked, ['plans', 'list', 0], ['plans', 'show', 0], ['plans', 'approve', 0]] : asked);
  assert.match(operator[0]?.stdout ?? '', /remove/);
  assert.match(operator[1]?.stdout ?? '', /ai-scratch/);
  assert.match(operator[4]?.stdout ?? '', /ai-full-box/);

  if (!walk.planned) return;
  // the plan: shown step by step before approval, then run by dom0 to the end
  const shown = operator[7]?.stdout ?? '';
  for (const n of [1, 2, 3, 4, 5, 6]) assert.match(shown, new RegExp(`^ *step ${n} of 6:`, 'm'), shown);
  assert.match(shown, /echo built/);
  assert.match(operator[8]?.stdout ?? '', /plan 1 done\n$/);
  const status = agent.find((e) => e.tool === 'plan_status')?.result.structuredContent as { status: string; steps: { tool: string; status: string }[] };
  assert.equal(status.status, 'done');
  assert.deepEqual(status.steps.map((s) => [s.tool, s.status]), PLAN_STEPS.map((s) => [s.tool, 'done']));
  assert.ok(walk.finalQubes.includes('ai-plan'));
});
