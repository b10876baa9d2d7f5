/**
 * What the principal and dom0 exchange about plans (docs/action-gate.md,
 * "Reviewable plans"): a submission, `qmcp.PlanSubmit`'s payload, is a
 * purpose line and the exact calls of its steps; a status,
 * `qmcp.PlanStatus+ID`'s answer, gives each step back with its state and
 * the reply it got, for the principal to decode as the step's tool would.
 * The decoders accept only what the encoders write.
 */
import { OPERATIONS, type Operation } from './model/capabilities.js';

/** Steps in one plan at most. */
export const MAX_STEPS = 32;
/** The purpose line: printable ASCII, at most this many characters. */
export const MAX_PURPOSE = 200;

/** A plan id: the principal's own count of its submissions. */
export const PLAN_ID = /^[1-9][0-9]{0,8}$/;

/** One step: the exact qrexec call the step's tool would make. */
export interface PlanStep {
  readonly operation: string;
  /** The qube called, for an operation the policy decides; absent for a dom0 service (`@adminvm`). */
  readonly qube?: string;
  /** The qrexec argument, '' for none. */
  readonly argument: string;
  readonly payload: Buffer;
}

export interface PlanRequest {
  readonly purpose: string;
  readonly steps: readonly PlanStep[];
}

/** `interrupted`: approved or running, but the operator's command that ran it is gone; dom0 never resumes it. */
export type PlanState = 'pending' | 'approved' | 'running' | 'done' | 'failed' | 'denied' | 'lapsed' | 'interrupted';
export type StepState = 'pending' | 'running' | 'done' | 'failed' | 'skipped';

/** How a step's call ended, as qrexec-client-vm would have shown it to the principal. */
export interface StepReply {
  /** The exit status: 0, a service's own, 126 for the uniform refusal, 125 for a call that did not complete. */
  readonly status: number;
  /** Its stdout, bytes kept as they came. */
  readonly output: Buffer;
}

export interface StepStatus extends PlanStep {
  readonly state: StepState;
  readonly reply?: StepReply;
}

export interface PlanStatus {
  readonly plan: string;
  readonly state: PlanState;
  readonly steps: readonly StepStatus[];
}

/** Operations a plan may hold: every one of the model but an event window, the plan operations themselves and background jobs. */
export function steppable(op: Operation): boolean {
  // a job (a forward is one) is named by an id its qube chooses when it starts, which a plan cannot hold
  return op.id !== 'events' && !op.id.startsWith('plan.') && !op.id.startsWith('job.') && op.id !== 'port.forward';
}

export function isPurpose(v: unknown): v is string {
  return typeof v === 'string' && v.length >= 1 && v.length <= MAX_PURPOSE && /^[\x20-\x7e]*$/.test(v);
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function bytesOf(v: unknown): Buffer | null {
  return typeof v === 'string' && BASE64.test(v) ? Buffer.from(v, 'base64') : null;
}

function plainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function exactKeys(o: Record<string, unknown>, keys: readonly string[]): boolean {
  const have = Object.keys(o);
  return have.length === keys.length && keys.every((k) => Object.hasOwn(o, k));
}

/** The members a step has on the wire: a dom0 service's call has no qube, an Admin API call no argument. */
function stepKeys(op: Operation): string[] {
  if (op.target === 'dom0-service') return ['operation', 'argument', 'payload'];
  if (op.target === 'admin-api') return ['operation', 'qube', 'payload'];
  return ['operation', 'qube', 'argument', 'payload'];
}

function stepJson(s: PlanStep): Record<string, unknown> {
  return {
    operation: s.operation,
    ...(s.qube !== undefined ? { qube: s.qube } : {}),
    ...(operationOf(s.operation)?.target === 'admin-api' ? {} : { argument: s.argument }),
    payload: s.payload.toString('base64'),
  };
}

function operationOf(id: unknown): Operation | undefined {
  return OPERATIONS.find((o) => o.id === id && steppable(o));
}

/** A step from its wire form; null when a member is missing, extra or of the wrong type. */
function stepFrom(v: unknown): PlanStep | null {
  if (!plainObject(v)) return null;
  const op = operationOf(v['operation']);
  if (op === undefined || !exactKeys(v, stepKeys(op))) return null;
  const payload = bytesOf(v['payload']);
  const argument = op.target === 'admin-api' ? '' : v['argument'];
  const qube = v['qube'];
  if (payload === null || typeof argument !== 'string' || (op.target !== 'dom0-service' && typeof qube !== 'string')) return null;
  return { operation: op.id, ...(typeof qube === 'string' ? { qube } : {}), argument, payload };
}

function parseJson(data: Buffer): unknown {
  try {
    return JSON.parse(data.toString('utf8'));
  } catch {
    return undefined;
  }
}

/** The submission as the JSON value whose text is `qmcp.PlanSubmit`'s payload. */
export function planRequestJson(r: PlanRequest): Record<string, unknown> {
  return { purpose: r.purpose, steps: r.steps.map(stepJson) };
}

/** The submission DATA holds: its shape only; what each step may do is dom0's to check. Null when malformed. */
export function decodePlanRequest(data: Buffer): PlanRequest | null {
  const v = parseJson(data);
  if (!plainObject(v) || !exactKeys(v, ['purpose', 'steps']) || !isPurpose(v['purpose'])) return null;
  const raw = v['steps'];
  if (!Array.isArray(raw) || raw.length < 1 || raw.length > MAX_STEPS) return null;
  const steps = raw.map(stepFrom);
  if (steps.some((s) => s === null)) return null;
  return { purpose: v['purpose'], steps: steps as PlanStep[] };
}

const PLAN_STATES: readonly PlanState[] = ['pending', 'approved', 'running', 'done', 'failed', 'denied', 'lapsed', 'interrupted'];
const STEP_STATES: readonly StepState[] = ['pending', 'running', 'done', 'failed', 'skipped'];

export function encodePlanStatus(s: PlanStatus): Record<string, unknown> {
  return {
    plan: s.plan,
    state: s.state,
    steps: s.steps.map((step) => ({
      ...stepJson(step),
      state: step.state,
      ...(step.reply ? { status: step.reply.status, output: step.reply.output.toString('base64') } : {}),
    })),
  };
}

/** A status as dom0 answers it; null when it is not one encodePlanStatus writes. */
export function decodePlanStatus(v: unknown): PlanStatus | null {
  if (!plainObject(v) || !exactKeys(v, ['plan', 'state', 'steps'])) return null;
  const { plan, state, steps } = v;
  if (typeof plan !== 'string' || !PLAN_ID.test(plan) || !PLAN_STATES.includes(state as PlanState) || !Array.isArray(steps)) return null;
  const out: StepStatus[] = [];
  for (const raw of steps) {
    if (!plainObject(raw)) return null;
    const { state: stepState, status, output, ...call } = raw;
    const step = stepFrom(call);
    if (step === null || !STEP_STATES.includes(stepState as StepState)) return null;
    if (status === undefined && output === undefined) {
      out.push({ ...step, state: stepState as StepState });
      continue;
    }
    const bytes = bytesOf(output);
    if (typeof status !== 'number' || !Number.isSafeInteger(status) || bytes === null) return null;
    out.push({ ...step, state: stepState as StepState, reply: { status, output: bytes } });
  }
  return { plan, state: state as PlanState, steps: out };
}
