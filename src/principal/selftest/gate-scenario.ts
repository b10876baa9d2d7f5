/**
 * The action gate from the principal's seat (docs/action-gate.md): a gated
 * call on a name outside the agent's world answers at once with the same
 * bytes as before, since nothing outside the world ever asks; a gated call
 * on the self-test's own fixture waits (the keepalive newlines show it), and
 * the operator's answer decides: a denial is the uniform refusal with
 * nothing changed, an approval acts. The principal never learns a request's
 * id, so the operator is told which row to answer.
 */
import { describe, isRefusal, isRefusalAfterWait, jsonOf, sameReply } from './agent.js';
import type { Agent } from './agent.js';
import type { CallHooks, Reply } from './caller.js';
import { Findings } from './context.js';
import type { Scenario } from './context.js';

/** The dom0-service operations the default gate asks for that the self-test can make harmlessly. */
const GATED_PROBES: readonly { readonly id: string; readonly call: (a: Agent, qube: string, hooks: CallHooks) => Promise<Reply> }[] = [
  { id: 'remove', call: (a, q, h) => a.remove(q, h) },
  { id: 'property.set', call: (a, q, h) => a.setProperty(q, 'autostart', false, h) },  { id: 'shutdown', call: (a, q, h) => a.shutdown(q, h) },
  { id: 'kill', call: (a, q, h) => a.kill(q, h) },
];

/** Another label than `label`, so an approved set is seen to act. */
const otherLabel = (label: string): string => (label === 'purple' ? 'orange' : 'purple');

export const gate: Scenario = {
  id: 'gate',
  async run(ctx) {
    const f = new Findings();
    // outside the world: no request (no keepalive), the bytes of the earlier probes
    const matrix = await ctx.probeMatrix();
    const outside = await Promise.all(
      GATED_PROBES.flatMap((p) => ctx.outOfWorld.map(async (name) => ({ p, name, g: await ctx.gated(p.id, name, null, (h) => p.call(ctx.agent, name, h)) }))),
    );
    for (const { p, name, g } of outside) {
      f.check(!g.waited, `${p.id} on ${JSON.stringify(name)}, outside the agent's world, waited for the operator: it made a request`);
      const before = matrix.get(p.id)?.get(name);
      f.check(before !== undefined && isRefusal(g.reply) && sameReply(g.reply, before), `${p.id} on ${JSON.stringify(name)} answered ${describe(g.reply)}, not the refusal it gave before`);
    }
    f.note(`${outside.length} gated calls outside the world refused at once, byte-identical`);

    const base = ctx.fixture('appvm');
    if (!base) {
      f.notRun('no fixture to ask about (see create-rules)');
      return f.outcome();
    }
    const before = await ctx.agent.info(base.name);
    const label = jsonOf(before)?.['label'];
    if (typeof label !== 'string') {
      f.fail(`info of ${base.name}: ${describe(before)}`);
      return f.outcome();
    }
    const answers = ctx.options.gateAnswers ?? 'deny';
    const to = otherLabel(label);
    const g = await ctx.gated('property.set', base.name, answers === 'skip' ? null : answers, (h) => ctx.agent.setProperty(base.name, 'label', to, h));
    const after = await ctx.agent.info(base.name);
    const acted = jsonOf(after)?.['label'] === to;
    if (!g.waited) {
      if (g.reply.status === 0) f.notRun(`the gate lets property.set through without asking here, so there was nothing to answer (${base.name} is now ${to})`);
      else f.notRun(`property.set on ${base.name} answered ${describe(g.reply)} without waiting: the fixture's tier does not reach the gate`);
    } else if (g.withdrawn) {
      f.check(sameReply(before, after), `${base.name} changed after its waiting property.set was withdrawn`);
      f.notRun('--gate-answers skip: the call waited and was withdrawn; no operator answer was checked');
    } else if (answers === 'deny') {
      f.check(isRefusalAfterWait(g.reply), `the denied property.set answered ${describe(g.reply)}, not the uniform refusal`);
      f.check(sameReply(before, after), `${base.name} changed although its property.set was refused`);
      f.note(`property.set on ${base.name} waited, and refused (denied, or lapsed unanswered) with nothing changed`);
    } else {
      f.check(g.reply.status === 0 && jsonOf(g.reply) !== null && acted, `the allowed property.set answered ${describe(g.reply)}; ${base.name}'s label is ${JSON.stringify(jsonOf(after)?.['label'])}`);
      f.note(`property.set on ${base.name} waited, was allowed, and acted`);
    }
    return f.outcome();
  },
};
