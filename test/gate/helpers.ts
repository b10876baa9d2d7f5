/** Shared by the action gate's tests: settings that ask, waiting for a request, answering it, weakened modules. */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { readTail } from '../../src/dom0/audit/index.js';
import type { AuditEntry } from '../../src/dom0/audit/index.js';
import type { ApprovalRequest, Decision } from '../../src/dom0/gate/store.js';
import { approvalsDir, listRequests, writeAnswer } from '../../src/dom0/gate/store.js';
import type { Clock } from '../../src/dom0/gate/wait.js';
import type { GateAnswer } from '../../src/shared/model/capabilities.js';
import { OPERATIONS } from '../../src/shared/model/capabilities.js';
import { OPEN_GATE } from '../../src/sim/open-gate.js';
import { hangBoundMs } from '../../verify/hang-bound.js';
import { compiled, weakenedFile, weakenedGateRunner } from '../../verify/weakened-module.js';
import { stableJson } from '../../verify/malformed/host.js';
import { BASE_SETTINGS } from '../services-write/helpers.js';
import type { Host, SettingsFile } from '../services-write/helpers.js';

/** The operations of a qmcp dom0 service the gate can apply to, from the model. */
export const GATEABLE_SERVICE_OPS: readonly string[] = OPERATIONS.filter((op) => op.target === 'dom0-service' && op.gate !== null).map((op) => op.id);

/** Every dom0-service operation asks; the rest stays open. */
export const ASK_SERVICES: Readonly<Record<string, GateAnswer>> = {
  ...OPEN_GATE,
  ...Object.fromEntries(GATEABLE_SERVICE_OPS.map((id) => [id, 'ask'] as const)),
};

export const ASKING: SettingsFile = { ...BASE_SETTINGS, gate: ASK_SERVICES };

/** Waits (bounded, never timed) for a pending request matching `pick`. */
export async function pendingRequest(root: string, pick: (r: ApprovalRequest) => boolean = () => true): Promise<ApprovalRequest> {
  const limit = Date.now() + hangBoundMs(60_000);
  for (;;) {
    const found = (await listRequests(approvalsDir(root), new Date())).find(({ request, state }) => state === 'pending' && pick(request));
    if (found) return found.request;
    assert.ok(Date.now() < limit, 'no request came');
    await sleep(20);
  }
}

/** Answers the next pending request as the operator would. */
export async function answerNext(root: string, decision: Decision, pick?: (r: ApprovalRequest) => boolean): Promise<ApprovalRequest> {
  const r = await pendingRequest(root, pick);
  await writeAnswer(approvalsDir(root), r.id, { decision, by: 'tester', how: 'cli' }, new Date());
  return r;
}

/** Waits (bounded) until `ok()` holds. */
export async function until(ok: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const limit = Date.now() + hangBoundMs(60_000);
  while (!(await ok())) {
    assert.ok(Date.now() < limit, `never: ${what}`);
    await sleep(20);
  }
}

/** A clock whose sleeps pass at once: a deadline of seconds lapses in a few hundred turns of the event loop. */
export function fastClock(): Clock {
  let t = Date.now();
  return {
    now: () => t,
    sleep: async (ms) => {
      t += ms;
      await new Promise((r) => setImmediate(r));
    },
  };
}

/** The whole simulated machine, canonically. */
export function machine(h: Host): string {
  return stableJson(h.sim.app.snapshot());
}

/** The audit log's entries, oldest first. */
export async function auditEntries(root: string): Promise<AuditEntry[]> {
  return (await readTail(root, 100_000)).map((l) => l.entry).filter((e): e is AuditEntry => e !== null);
}

// ---- weakened variants: a compiled module with one guard taken out

export { compiled, weakenedFile, weakenedGateRunner as weakenedRunner };
