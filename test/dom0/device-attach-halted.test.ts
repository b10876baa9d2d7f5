/**
 * qmcp.DeviceAttach tells the agent its frontend is not running when qubesd
 * refuses a halted one: real qubesd says QubesVMNotRunningError ("do you mean
 * `assign`?"), where the simulator used to say QubesVMNotStartedError.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { QubesdError } from '../../src/dom0/qubesd.js';
import { ActionableError } from '../../src/dom0/service/refusal.js';
import { actionable } from '../../src/dom0/services/device-attach.js';
import { weakened } from '../plans/helpers.js';

function kindFor(map: (err: unknown) => unknown): string | null {
  const out = map(new QubesdError('QubesVMNotRunningError', 'VM not running, cannot attach device, do you mean `assign`?'));
  return out instanceof ActionableError ? out.kind : null;
}

test("qubesd's refusal of a halted frontend reaches the agent as not_running", () => {
  assert.equal(kindFor(actionable), 'not_running');
});

test("the weakened map that knows only the simulator's old class is caught", async () => {
  const guard = "QubesVMNotRunningError: ['not_running', 'the frontend qube is not running: start it first'],";
  const mod = (await import(weakened('dom0/services/device-attach.js', guard, ''))) as { actionable: typeof actionable };
  assert.equal(kindFor(mod.actionable), null);
});
