/**
 * The action gate on the demo host, as issue 12 asks to show it: a remove
 * that waits (with progress), is approved with `qmcp dom0 approvals allow`
 * and completes; one denied, which is the uniform refusal and changes
 * nothing. The same walk prints docs/action-gate.md's transcript.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { REFUSAL } from '../../src/principal/results.js';
import type { Entry } from '../../scripts/gate-walk.js';
import { walkGate } from '../../scripts/gate-walk.js';

type AgentEntry = Extract<Entry, { who: 'agent' }>;
type OperatorEntry = Extract<Entry, { who: 'operator' }>;

test('the demo gate: a remove approved from dom0 completes, one denied is the uniform refusal', async () => {
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
  const verbs = operator.map((e) => [e.argv[3], e.status]);
  assert.deepEqual(verbs, [['list', 0], ['show', 0], ['allow', 0], ['list', 0], ['show', 0], ['deny', 0]]);
  assert.match(operator[0]?.stdout ?? '', /remove/);
  assert.match(operator[1]?.stdout ?? '', /ai-scratch/);
  assert.match(operator[4]?.stdout ?? '', /ai-full-box/);
});
