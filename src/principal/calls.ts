/**
 * The three kinds of qrexec call the tools make, each turning an outcome into
 * data or into AgentRefusal / Actionable / Failed. Texts that reach the agent are
 * written here, never copied from a callee (qubesd's messages and a child's
 * stderr can name things outside the sandbox).
 */
import { parseReply } from '../shared/adminapi/wire.js';
import { InQubeError } from '../shared/inqube-protocol.js';
import { operation, type TargetForm } from '../shared/model/capabilities.js';
import { decodeReply } from '../shared/service-reply.js';
import { QrexecAborted, REFUSED_EXIT_STATUS, type QrexecOutcome, type QrexecRunner } from './qrexec.js';
import { Actionable, Failed, AgentRefusal } from './results.js';

export interface CallContext {
  readonly qrexec: QrexecRunner;
  readonly signal: AbortSignal;
}

/** The qrexec service of a model operation reached in this form; throws for any other (a programming error). */
export function serviceOf(operationId: string, form: TargetForm): string {
  const op = operation(operationId);
  if (op.target !== form) throw new Error(`${operationId} is reached as ${op.target}, not ${form}`);
  return op.service;
}

/** A call that ran to its end: its exit status and stdout. */
export interface Exited {
  readonly status: number;
  readonly stdout: Buffer;
}

function exited(outcome: QrexecOutcome): Exited {
  if (outcome.kind === 'refused') throw new AgentRefusal();
  if (outcome.kind === 'failed') throw new Failed();
  return outcome;
}

/**
 * A dom0 service served by the resident process answers through a socket:
 * qrexec says 0 and its reply ends with the status the executable would
 * have exited with (shared/service-reply.ts). Read as that status, so both
 * ways of serving look alike from here on.
 */
function dom0Exited(e: Exited): Exited {
  const decoded = e.status === 0 ? decodeReply(e.stdout) : null;
  if (decoded === null) return e;
  if (decoded.status === REFUSED_EXIT_STATUS) throw new AgentRefusal();
  return decoded;
}

/**
 * One exact qrexec call of a model operation: what a tool sends, and what a
 * plan step holds (dom0 checks, shows and makes exactly this call).
 */
export interface ExactCall {
  readonly operation: string;
  /** `@adminvm` for a dom0 service, else the qube called. */
  readonly target: string;
  /** The qrexec argument, '' for none. */
  readonly argument: string;
  readonly payload: Buffer;
  /** The principal's own bounds on the call; not part of it. */
  readonly limits?: { readonly maxOutput?: number; readonly timeoutMs?: number };
}

/**
 * A dom0-service operation's call: its qmcp service at @adminvm, the payload
 * as JSON, or as the bytes given for a service that takes Qubes' own syntax
 * (firewall rules).
 */
export function dom0Exact(operationId: string, argument: string, payload?: unknown): ExactCall {
  serviceOf(operationId, 'dom0-service');
  const bytes = payload === undefined ? Buffer.alloc(0) : payload instanceof Uint8Array ? Buffer.from(payload) : Buffer.from(JSON.stringify(payload), 'utf8');
  return { operation: operationId, target: '@adminvm', argument, payload: bytes };
}

/** A native Admin API operation's call on the named qube, routed by policy to qubesd. */
export function adminExact(target: string, operationId: string, payload?: Uint8Array): ExactCall {
  serviceOf(operationId, 'admin-api');
  return { operation: operationId, target, argument: '', payload: Buffer.from(payload ?? []) };
}

/** An in-qube operation's call, its service run as root inside the target. */
export function inQubeExact(target: string, operationId: string, argument: string, payload: Uint8Array, limits?: ExactCall['limits']): ExactCall {
  serviceOf(operationId, 'in-qube');
  return { operation: operationId, target, argument, payload: Buffer.from(payload), ...(limits ? { limits } : {}) };
}

/** Makes the call; a refusal or a call that did not complete throws. */
export async function send(ctx: CallContext, call: ExactCall): Promise<Exited> {
  const op = operation(call.operation);
  // an in-qube service without an argument is called by its bare name
  const argument = op.target === 'in-qube' && call.argument === '' ? undefined : call.argument;
  const payload = op.target === 'in-qube' || call.payload.length > 0 ? call.payload : undefined;
  const done = exited(await ctx.qrexec.call({ target: call.target, service: op.service, argument, payload, signal: ctx.signal, ...call.limits }));
  return op.target === 'dom0-service' ? dom0Exited(done) : done;
}

/** Actionable texts for the Qubes exception classes an in-scope call can meet. */
const ADMIN_ERRORS: Readonly<Record<string, string>> = {
  QubesVMNotStartedError: 'The qube is not running.',
  QubesVMNotRunningError: 'The qube is not running.',
  QubesVMNotHaltedError: 'The qube is not halted: shut it down first.',
  QubesVMNotPausedError: 'The qube is not paused.',
  QubesVMNotSuspendedError: 'The qube is not paused.',
  QubesVMShutdownTimeoutError: 'The qube did not shut down in time; it may still be stopping. Check its state, or kill it.',
  QubesMemoryError: 'Not enough memory to do this now.',
  QubesValueError: 'The value was not accepted.',
  QubesNoTemplateError: 'The qube has no template.',
};

/** A native Admin API operation routed by policy to qubesd; `0\0data` or `2\0Class\0\0message\0`. */
export async function adminCall(ctx: CallContext, target: string, operationId: string, payload?: Uint8Array): Promise<Buffer> {
  return adminResult(await send(ctx, adminExact(target, operationId, payload)));
}

/** An Admin API call's data; qubesd's exception classes become refusals or actionable errors. */
export function adminResult({ status, stdout }: Exited): Buffer {
  if (status !== 0) throw new Failed();
  const reply = parseReply(stdout);
  if (reply === null) throw new Failed();
  if (reply.ok) return reply.data;
  // qubesd's refusal classes look like absence on purpose
  if (reply.errorClass === 'PermissionDenied' || reply.errorClass === 'QubesVMNotFoundError') throw new AgentRefusal();
  const text = ADMIN_ERRORS[reply.errorClass];
  throw text === undefined ? new Actionable('Qubes reported an error for this operation; check the qube\'s state and the arguments.') : new Actionable(text);
}

/** Dom0 error codes are chosen by our own trusted services; keep their text short and printable. */
function cleanMessage(message: unknown): string {
  return typeof message === 'string' ? message.replace(/[^\x20-\x7e]/g, '?').slice(0, 300) : '';
}

/** A dom0-service operation, its qmcp service at @adminvm: JSON in; JSON out on exit 0; {"error":…} on exit 1. */
export async function dom0Call(ctx: CallContext, operationId: string, argument: string, payload?: unknown): Promise<unknown> {
  return dom0Result(await send(ctx, dom0Exact(operationId, argument, payload)));
}

/** A dom0 service's answer: its JSON on exit 0; its in-scope error, on exit 1, as an actionable one. */
export function dom0Result({ status, stdout }: Exited): unknown {
  let value: unknown;
  try {
    value = JSON.parse(stdout.toString('utf8'));
  } catch {
    throw new Failed();
  }
  if (status === 0) return value;
  if (status === 1 && typeof value === 'object' && value !== null && 'error' in value) {
    const err = (value as { error: unknown }).error;
    if (typeof err === 'object' && err !== null) {
      const { code, message } = err as { code?: unknown; message?: unknown };
      const c = cleanMessage(code);
      const m = cleanMessage(message);
      throw new Actionable(m === '' ? `The operation failed (${c}).` : `The operation failed (${c}): ${m}`);
    }
  }
  throw new Failed();
}

const INQUBE_ERRORS: Readonly<Record<string, string>> = {
  not_found: 'No such file or directory inside the qube.',
  is_directory: 'The path is a directory.',
  not_directory: 'The path is not a directory.',
  denied: 'Permission denied inside the qube.',
  not_regular: 'The path is not a regular file.',
  too_large: 'The content is over the size limit.',
  io_error: 'An I/O error happened inside the qube.',
  copy_failed: 'The copy failed inside the source qube (qvm-copy-to-vm reported an error).',
  no_job: 'No such job in this qube: job_list lists its jobs, and they end when the qube stops.',
  bad_request: 'The service inside the qube did not accept the request.',
  bad_version: 'The qmcp services inside the qube are of another version; reinstall them in its template.',
  no_user: 'No such user inside the qube.',
};

/** An in-qube service's reply, decoded by `decode`; its errors become refusals or actionable ones. */
export function inQubeResult<T>({ status, stdout }: Exited, decode: (data: Buffer) => T): T {
  if (status !== 0) throw new Failed();
  try {
    return decode(stdout);
  } catch (e) {
    if (e instanceof InQubeError) {
      // qrexec refused a call the service made (a copy to a qube outside the mesh, or none at all)
      if (e.kind === 'refused') throw new AgentRefusal();
      const text = INQUBE_ERRORS[e.kind];
      if (text !== undefined) throw new Actionable(text);
    }
    throw new Failed();
  }
}

export { QrexecAborted };
