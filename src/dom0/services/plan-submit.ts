/**
 * qmcp.PlanSubmit: a plan of steps for the operator to review. Every step
 * is checked as its own call would be (shape, then scope and tier on the
 * one snapshot the runner took); any step outside the agent's world or
 * tier refuses the whole plan with the uniform refusal. The plan is kept
 * in dom0 until the operator approves, denies, or it lapses; nothing runs
 * here.
 */
import { newCorrelation } from '../audit/entry.js';
import { openAudit } from '../audit/index.js';
import type { WriteDeps } from '../create/deps.js';
import { checkShape, lookedUp, outOfReach, type CheckedStep } from '../plans/check.js';
import { PLAN_LAPSE_MS, nextId, planDigest, planState, plansOf, pruneEnded, recordLapses, storedStep, withPlanLock, writePlan } from '../plans/store.js';
import type { PlanRecord } from '../plans/store.js';
import { loadDom0Config } from '../service/config.js';
import { ActionableError, ServiceRefusal } from '../service/refusal.js';
import type { ServiceSpec } from '../service/run.js';
import { decodePlanRequest } from '../../shared/plan-protocol.js';

export interface PlanSubmitInput {
  readonly purpose: string;
  readonly steps: readonly CheckedStep[];
}

export function planSubmitService(deps: WriteDeps, handlers: ReadonlyMap<string, ServiceSpec<unknown>>): ServiceSpec<PlanSubmitInput> {
  return {
    operation: 'plan.submit',
    // nothing on the machine changes; the plan's own audit entries record it
    changesState: false,
    parse(argument, payload) {
      const request = argument === '' ? decodePlanRequest(payload) : null;
      if (request === null) return null;
      const steps = request.steps.map((s, i) => {
        try {
          return checkShape(s, handlers);
        } catch (err) {
          // a step's own input mistake, said with its number
          if (err instanceof ActionableError) throw new ActionableError(err.kind, `step ${i + 1}: ${err.message}`);
          throw err;
        }
      });
      return steps.every((s) => s !== null) ? { purpose: request.purpose, steps: steps as CheckedStep[] } : null;
    },
    targets: (input) => lookedUp(input.steps),
    async handle({ input, principal, snapshot }) {
      const outside = outOfReach(input.steps, snapshot, deps.settings());
      if (outside !== null) throw new ServiceRefusal(outside);
      const cap = loadDom0Config(deps.root, deps.log, undefined, principal)?.settings.approvalPendingCap;
      if (cap === undefined) throw new ServiceRefusal('settings unusable');
      const steps = input.steps.map((s) => storedStep(s.step));
      const qubes = [...new Set(input.steps.flatMap((s) => s.needs.map((n) => n.name)))];
      const audit = openAudit({ root: deps.root });
      const made = await withPlanLock(deps.root, principal, async () => {
        const now = deps.now();
        await recordLapses(deps.root, principal, audit, now);
        const waiting = plansOf(deps.root, principal).filter((p) => planState(p, now) === 'pending').length;
        if (waiting >= cap) throw new ServiceRefusal('too many plans wait for the operator');
        const plan: PlanRecord = {
          id: nextId(deps.root, principal),
          principal,
          correlation: newCorrelation(),
          purpose: input.purpose,
          submitted: now.toISOString(),
          lapses: new Date(now.getTime() + PLAN_LAPSE_MS).toISOString(),
          digest: planDigest(principal, input.purpose, steps),
          steps,
          state: 'pending',
          results: steps.map(() => ({ state: 'pending' })),
        };
        await audit.gate({ kind: 'plan', principal, operation: 'plan.submit', qubes, correlation: plan.correlation, result: 'ok', detail: `plan ${plan.id} submitted, ${steps.length} steps` });
        writePlan(deps.root, plan);
        pruneEnded(deps.root, principal, now);
        return plan;
      });
      if (made === null) throw new ServiceRefusal('plan lock busy');
      deps.log(`plan ${made.id} of ${principal} waits for the operator: qmcp dom0 plans show ${made.id}`);
      return { plan: made.id, state: 'pending' };
    },
  };
}
