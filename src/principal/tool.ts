/**
 * The tool framework: a ToolSpec is a name, an operation of the capability
 * model, strict schemas and a run function. register() wraps run so that no
 * thrown error's text can reach a result: refusals become the one REFUSAL
 * object, our own actionable errors keep their text, and anything else
 * becomes the generic failure.
 */
import type { CallToolResult, McpServer, ServerContext } from '@modelcontextprotocol/server';
import type * as z from 'zod';
import type { CallContext } from './calls.js';
import { annotationsFor, mayAsk } from './operations.js';
import type { QrexecRunner } from './qrexec.js';
import { Actionable, actionable, FAILED_TEXT, ok, REFUSAL, AgentRefusal } from './results.js';

export interface ToolSpec<I extends z.ZodObject = z.ZodObject, O extends z.ZodObject = z.ZodObject> {
  readonly name: string;
  readonly title: string;
  /** The capability model's operation id; the annotations come from its row. */
  readonly operation: string;
  /** Other operations of the model it calls, with the same effects (qube_run's background job). */
  readonly also?: readonly string[];
  readonly description: string;
  readonly input: I;
  readonly output: O;
  /**
   * Long operations send heartbeat progress when the client asked for it, as
   * do those the action gate can hold for the operator (derived from the model).
   */
  readonly long?: boolean;
  /** Resolves to the result, which is checked against `output` before it is sent. */
  run(input: z.output<I>, ctx: CallContext): Promise<unknown>;
}

/** How a call ended, as reported to an observer. */
export type CallVerdict = 'ok' | 'refused' | 'error';

/**
 * Told of every call after its result is made: the tool, the qube names the
 * agent sent and how it ended. It only reports; it can change nothing, and
 * whatever it throws is dropped.
 */
export type CallObserver = (tool: string, target: string, verdict: CallVerdict) => void;

/** The argument fields that name qubes, in the order they are reported. */
const NAME_FIELDS = ['qube', 'name', 'source', 'target', 'disposable_template', 'template'] as const;

/** The qube names a call's arguments carry, as sent, space-separated. */
export function callTarget(args: unknown): string {
  if (typeof args !== 'object' || args === null) return '';
  const record = args as Record<string, unknown>;
  return NAME_FIELDS.map((k) => record[k])
    .filter((v): v is string => typeof v === 'string')
    .join(' ');
}

export function verdictOf(result: CallToolResult): CallVerdict {
  if (result === REFUSAL) return 'refused';
  return result.isError === true ? 'error' : 'ok';
}

function report(onCall: CallObserver | undefined, tool: string, args: unknown, result: CallToolResult): void {
  if (onCall === undefined) return;
  try {
    onCall(tool, callTarget(args), verdictOf(result));
  } catch {
    // an observer has no say in the call
  }
}

/** Heartbeat period of progress notifications; their text never varies. */
const PROGRESS_PERIOD_MS = 2_000;
const PROGRESS_TEXT = 'working';

function startProgress(ctx: ServerContext): () => void {
  const token = ctx.mcpReq._meta?.progressToken;
  if (token === undefined) return () => undefined;
  let progress = 0;
  const send = (): void => {
    progress += 1;
    ctx.mcpReq
      .notify({ method: 'notifications/progress', params: { progressToken: token, progress, message: PROGRESS_TEXT } })
      .catch(() => undefined);
  };
  send();
  const timer = setInterval(send, PROGRESS_PERIOD_MS);
  return () => clearInterval(timer);
}

/** Whether a call of SPEC sends progress: it is long, or it may wait for the operator's approval. */
export function heartbeat(spec: Pick<ToolSpec, 'long' | 'operation'>): boolean {
  return spec.long === true || mayAsk(spec.operation);
}

/** Runs one call and maps every way it can end to a result of ours. */
export async function runTool<I extends z.ZodObject, O extends z.ZodObject>(
  spec: ToolSpec<I, O>,
  args: z.output<I>,
  ctx: CallContext,
): Promise<CallToolResult> {
  try {
    const value = await spec.run(args, ctx);
    // a reply that does not fit the declared shape is a failure, not an SDK error text
    const checked = spec.output.safeParse(value);
    if (!checked.success) return actionable(FAILED_TEXT, 'failed');
    return ok(checked.data as Record<string, unknown>);
  } catch (e) {
    if (e instanceof AgentRefusal) return REFUSAL;
    if (e instanceof Actionable) return actionable(e.message, e.errorCode);
    return actionable(FAILED_TEXT, 'failed');
  }
}

/**
 * Each tool's output schema as JSON Schema, converted once: the SDK would
 * convert it again in every instance (one per HTTP request) at a tool's
 * first call. Set through the SDK's memo slot for it (`outputSchemaJson`).
 */
const outputSchemaJson = new WeakMap<ToolSpec, Record<string, unknown> | undefined>();

export function registerTool(server: McpServer, qrexec: QrexecRunner, spec: ToolSpec, onCall?: CallObserver): void {
  const registered = server.registerTool(
    spec.name,
    {
      title: spec.title,
      description: spec.description,
      inputSchema: spec.input,
      outputSchema: spec.output,
      annotations: annotationsFor(spec.operation, spec.title),
    },
    async (args: unknown, ctx: ServerContext): Promise<CallToolResult> => {
      const stop = heartbeat(spec) ? startProgress(ctx) : () => undefined;
      try {
        const result = await runTool(spec, args as z.output<typeof spec.input>, { qrexec, signal: ctx.mcpReq.signal });
        report(onCall, spec.name, args, result);
        return result;
      } finally {
        stop();
      }
    },
  );
  if (outputSchemaJson.has(spec)) registered.outputSchemaJson = outputSchemaJson.get(spec);
  else outputSchemaJson.set(spec, registered.outputSchemaJson);
}
