/** qmcp.PlanStatus+ID: a plan the caller submitted, with each step's state and reply; any other id is the uniform refusal. */
import type { WriteDeps } from '../create/deps.js';
import { openAudit } from '../audit/index.js';
import { noteLapses, planState, readPlan, stepOf } from '../plans/store.js';
import { ServiceRefusal } from '../service/refusal.js';
import type { ServiceSpec } from '../service/run.js';
import { encodePlanStatus, PLAN_ID } from '../../shared/plan-protocol.js';

export function planStatusService(deps: WriteDeps): ServiceSpec<{ id: string }> {
  return {
    operation: 'plan.status',
    changesState: false,
    parse: (argument, payload) => (PLAN_ID.test(argument) && payload.length === 0 ? { id: argument } : null),
    targets: () => [],
    async handle({ input, principal }) {
      await noteLapses(deps.root, principal, openAudit({ root: deps.root }), deps.now());
      const plan = readPlan(deps.root, principal, input.id);
      if (plan === null) throw new ServiceRefusal('no such plan of the caller');
      return encodePlanStatus({
        plan: plan.id,
        state: planState(plan, deps.now()),
        steps: plan.steps.map((s, i) => {
          const r = plan.results[i];
          const reply = r?.status !== undefined ? { reply: { status: r.status, output: Buffer.from(r.output ?? '', 'base64') } } : {};
          return { ...stepOf(s), state: r?.state ?? 'pending', ...reply };
        }),
      });
    },
  };
}
