/**
 * A gated dom0 call writes a newline every two seconds while it waits for
 * the operator; the principal reads the answer after them as if they were
 * not there, and a refusal after them is still the refusal.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dom0Call } from '../../src/principal/calls.js';
import type { CallContext } from '../../src/principal/calls.js';
import type { QrexecOutcome, QrexecRunner } from '../../src/principal/qrexec.js';
import { AgentRefusal, Actionable } from '../../src/principal/results.js';

function replying(outcome: QrexecOutcome): CallContext {
  const qrexec = { call: () => Promise.resolve(outcome) } as unknown as QrexecRunner;
  return { qrexec, signal: new AbortController().signal };
}

test('dom0Call: leading keepalive newlines before the answer are skipped', async () => {
  const stdout = Buffer.from('\n\n\n{"name":"ai-x","removed":true}\n');
  assert.deepEqual(await dom0Call(replying({ kind: 'exited', status: 0, stdout }), 'remove', 'ai-x'), { name: 'ai-x', removed: true });
  const error = Buffer.from('\n\n{"error":{"code":"in_use","message":"qube is in use by ai-y"}}\n');
  await assert.rejects(dom0Call(replying({ kind: 'exited', status: 1, stdout: error }), 'remove', 'ai-x'), Actionable);
  await assert.rejects(dom0Call(replying({ kind: 'refused' }), 'remove', 'ai-x'), AgentRefusal);
});
