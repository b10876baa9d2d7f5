/**
 * Reviewable plans: the agent submits steps, each a tool's exact call, for
 * the operator to review; dom0 runs them once approved. A step is made and
 * its reply read by the very functions its tool uses (exact.ts).
 */
import * as z from 'zod';
import { operation } from '../../shared/model/capabilities.js';
import { decodePlanStatus, isPurpose, MAX_PURPOSE, MAX_STEPS, PLAN_ID, planRequestJson, steppable } from '../../shared/plan-protocol.js';
import type { PlanStep, StepStatus } from '../../shared/plan-protocol.js';
import { dom0Exact, dom0Result, type ExactCall } from '../calls.js';
import { REFUSED_EXIT_STATUS } from '../qrexec.js';
import { Actionable, AgentRefusal, Failed, FAILED_TEXT, REFUSAL_TEXT } from '../results.js';
import { renamed } from '../schemas.js';
import { REFUSABLE, UNTRUSTED } from '../texts.js';
import type { ToolSpec } from '../tool.js';
import { callTool, isCallTool, type CallToolSpec } from './exact.js';

/** The tools a step may name; given as a function, as this module is itself in the tool list. */
export type StepTools = () => readonly ToolSpec[];

function stepTool(tools: readonly ToolSpec[], name: string): CallToolSpec | undefined {
  const t = tools.find((x) => x.name === name);
  return t !== undefined && isCallTool(t) && steppable(operation(t.operation)) ? t : undefined;
}

/** The exact call a step's tool makes for its arguments; an input the tool rejects is the agent's to fix. */
function stepCall(tools: readonly ToolSpec[], n: number, step: { tool: string; arguments?: Record<string, unknown> | undefined }): PlanStep {
  const tool = stepTool(tools, step.tool);
  if (tool === undefined) throw new Actionable(`Step ${n}: ${step.tool} cannot be a plan step.`);
  const input = tool.input.safeParse(step.arguments ?? {});
  if (!input.success) {
    const issue = input.error.issues[0];
    throw new Actionable(`Step ${n}: the arguments do not fit ${tool.name}${issue ? ` (${issue.path.join('.') || 'input'}: ${issue.message})` : ''}.`);
  }
  let call: ExactCall;
  try {
    call = tool.call(input.data);
  } catch (e) {
    if (e instanceof Actionable) throw new Actionable(`Step ${n}: ${e.message}`);
    throw e;
  }
  const dom0 = operation(call.operation).target === 'dom0-service';
  return { operation: call.operation, ...(dom0 ? {} : { qube: call.target }), argument: call.argument, payload: call.payload };
}

const StepInput = z.strictObject({
  tool: z.string().max(64).describe('the tool the step calls, e.g. "qube_run"'),
  arguments: z.record(z.string(), z.unknown()).optional().describe('the arguments that tool takes'),
});

const SubmitInput = z.strictObject({
  purpose: z.string().min(1).max(MAX_PURPOSE).refine(isPurpose, { message: 'printable ASCII only' }).describe('one short line saying what the plan is for, shown to the operator'),
  steps: z.array(StepInput).min(1).max(MAX_STEPS).describe('the steps, run in this order'),
});

export function planSubmitTool(tools: StepTools): CallToolSpec<typeof SubmitInput> {
  return callTool({
    name: 'plan_submit',
    title: 'Submit a plan for review',
    operation: 'plan.submit',
    description:
      `Submit a plan for the operator to review: a purpose line and up to ${MAX_STEPS} steps, each a tool and the arguments that tool takes (any tool but events_poll, qube_run_disposable and the plan tools). ` +
      'dom0 checks every step before it keeps the plan; a step it refuses refuses the whole plan, uniformly, without saying which. A step may name a qube an earlier step creates. ' +
      'Nothing runs until the operator approves the plan in dom0; then dom0 runs the steps in order, each checked again as it starts, and stops at the first that fails. ' +
      'A plan not approved within an hour lapses. A step whose reply passes 256 KiB fails: keep run steps\' output_limit small. Follow the plan with plan_status.' +
      REFUSABLE,
    input: SubmitInput,
    output: z.object({ plan: z.string(), status: z.string() }),
    call: (input) => {
      const steps = input.steps.map((s, i) => stepCall(tools(), i + 1, s));
      return dom0Exact('plan.submit', '', planRequestJson({ purpose: input.purpose, steps }));
    },
    result: (_call, reply) => renamed(dom0Result(reply), { state: 'status' }),
  });
}

/** A step's reply read as its tool reads one: the tool's result, or the text the tool would answer with. */
function stepResult(tools: readonly ToolSpec[], step: StepStatus): { result?: unknown; error?: string } {
  if (step.reply === undefined) return {};
  const tool = tools.find((t): t is CallToolSpec => isCallTool(t) && t.operation === step.operation);
  if (tool === undefined) return { error: FAILED_TEXT };
  const call: ExactCall = { operation: step.operation, target: step.qube ?? '@adminvm', argument: step.argument, payload: step.payload };
  try {
    if (step.reply.status === REFUSED_EXIT_STATUS) throw new AgentRefusal();
    const result = tool.output.safeParse(tool.result(call, { status: step.reply.status, stdout: step.reply.output }));
    return result.success ? { result: result.data } : { error: FAILED_TEXT };
  } catch (e) {
    if (e instanceof AgentRefusal) return { error: REFUSAL_TEXT };
    if (e instanceof Actionable) return { error: e.message };
    return { error: FAILED_TEXT };
  }
}

const StatusInput = z.strictObject({ plan: z.string().regex(PLAN_ID).describe('the id plan_submit returned') });

const StepOutput = z.object({
  step: z.number(),
  tool: z.string(),
  status: z.string(),
  result: z.unknown().optional(),
  error: z.string().optional(),
});

export function planStatusTool(tools: StepTools): CallToolSpec<typeof StatusInput> {
  return callTool({
    name: 'plan_status',
    title: 'Read a plan and its results',
    operation: 'plan.status',
    description:
      "Read a plan you submitted: its status (pending, approved, running, done, failed, denied, lapsed, interrupted: its run stopped midway and will not resume) and each step's status (pending, running, done, failed, skipped) with the result its tool would have returned, or the error it would have answered." +
      REFUSABLE +
      UNTRUSTED,
    input: StatusInput,
    output: z.object({ plan: z.string(), status: z.string(), steps: z.array(StepOutput) }),
    // every step's reply may be up to 256 KiB, as base64
    call: (input) => ({ ...dom0Exact('plan.status', input.plan), limits: { maxOutput: 16 * 1024 * 1024 } }),
    result: (_call, reply) => {
      const status = decodePlanStatus(dom0Result(reply));
      if (status === null) throw new Failed();
      const all = tools();
      return {
        plan: status.plan,
        status: status.state,
        steps: status.steps.map((s, i) => ({
          step: i + 1,
          tool: all.find((t) => isCallTool(t) && t.operation === s.operation)?.name ?? s.operation,
          status: s.state,
          ...stepResult(all, s),
        })),
      };
    },
  });
}
