/**
 * Tools that make one exact call. The call a tool makes and how it reads
 * the reply are functions of their own, so that a plan step is that very
 * call (plan_submit) and its reply reads as the tool's result (plan_status).
 */
import type * as z from 'zod';
import { send, type ExactCall, type Exited } from '../calls.js';
import type { ToolSpec } from '../tool.js';

export interface CallToolSpec<I extends z.ZodObject = z.ZodObject, O extends z.ZodObject = z.ZodObject> extends ToolSpec<I, O> {
  /** The call the tool makes for INPUT; throws Actionable when the input cannot make one. */
  call(input: z.output<I>): ExactCall;
  /** The tool's result from the call and how it ended; throws as the tool does (a refusal, an actionable error, a failure). */
  result(call: ExactCall, reply: Exited): unknown;
}

export function callTool<I extends z.ZodObject, O extends z.ZodObject>(spec: Omit<CallToolSpec<I, O>, 'run'>): CallToolSpec<I, O> {
  return {
    ...spec,
    run: async (input, ctx) => {
      const call = spec.call(input);
      return spec.result(call, await send(ctx, call));
    },
  };
}

export function isCallTool(t: ToolSpec): t is CallToolSpec {
  return typeof (t as Partial<CallToolSpec>).call === 'function' && typeof (t as Partial<CallToolSpec>).result === 'function';
}
