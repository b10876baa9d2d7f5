/** The shape of one Admin API method: its flags and handler. */
import type { SimApp } from '../app.js';
import type { VmState } from '../state.js';
import type { AdminEvent } from '../../../shared/adminapi/wire.js';
import type { Policy } from '../../../shared/policy/index.js';

/** true = required, false = forbidden, null = either. */
export type Flag = boolean | null;

export interface CallContext {
  readonly app: SimApp;
  readonly method: string;
  readonly src: VmState;
  readonly dest: VmState;
  readonly arg: string;
  readonly payload: Buffer;
  /** The qrexec policy, loaded fresh for a non-dom0 caller; null for dom0. */
  policy(): Policy | null;
  /** For streaming methods: sends one event message. */
  sendEvent(ev: AdminEvent): void;
  /** Resolves when the client has gone away. */
  readonly closed: Promise<void>;
}

export type Handler = (ctx: CallContext) => string | null | undefined | Promise<string | null | undefined>;

export interface MethodDef {
  readonly wantsArg: Flag;
  readonly wantsPayload: Flag;
  /** true = dest must be dom0, false = must not be, null = any. */
  readonly destAdminvm: Flag;
  readonly handler: Handler;
  /** Streams events instead of replying once. */
  readonly streaming?: boolean;
}

export type MethodTable = Record<string, MethodDef>;

export function m(wantsArg: Flag, wantsPayload: Flag, destAdminvm: Flag, handler: Handler): MethodDef {
  return { wantsArg, wantsPayload, destAdminvm, handler };
}
