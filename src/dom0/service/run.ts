import type { Readable } from 'node:stream';
import type { AuditLog } from '../audit/index.js';
import type { Qubesd } from '../qubesd.js';
import { QubesdError } from '../qubesd.js';
import { readBounded } from './bounded-input.js';
import type { InputLimits } from './bounded-input.js';
import { answer, answerError, refuse } from './output.js';
import type { ServiceIo } from './output.js';
import { ActionableError, ServiceRefusal } from './refusal.js';
import { readServiceCall } from './request.js';
import type { ServiceCall } from './request.js';
import type { Settings } from '../../shared/model/settings.js';
import type { HeldLock } from '../lockfile.js';
import { gateStep } from './gate-step.js';
import type { GateSeams } from './gate-step.js';
import { acquireSlot, reacquireSlot } from './slots.js';
import { Snapshot, visibleTargets } from './snapshot.js';
import type { QubeFacts, ScopeRules, TargetNeed } from './snapshot.js';

export type { TargetNeed };

export interface HandlerContext<I> {
  readonly input: I;
  readonly principal: string;
  readonly qubesd: Qubesd;
  readonly snapshot: Snapshot;
  /** The checked targets, in the order targets() named them. */
  readonly targets: readonly QubeFacts[];
}

/** One dom0 service: a table row plus one small handler. */
export interface ServiceSpec<I> {
  /** The capability-model operation this service implements (audit key). */
  readonly operation: string;
  /** Whether a call changes state (then it is audited with intent and outcome). */
  readonly changesState: boolean;
  /**
   * Allowlisted shapes of argument and payload; null means refuse. It may
   * throw an ActionableError for a mistake in the agent's own input (a name
   * without the prefix, a value out of range): that is answered before any
   * lookup, from the bytes and the settings alone.
   */
  parse(argument: string, payload: Buffer): I | null;
  /** The visible qubes the call acts on and the tier each needs. */
  targets(input: I): readonly TargetNeed[];
  /**
   * 'named': scope and tier are decided on a read of only the qubes the
   * call names (its targets and what `refers` gives), a one-qube call's
   * cost; by default, on a read of the whole machine (a listing, a scan).
   */
  readonly reads?: 'named';
  /** Qubes the decision refers to besides the targets (a value naming one), read with them. */
  refers?(input: I): readonly string[];
  /** Property or feature names the call touches, for the audit intent; never their values. */
  keys?(input: I): readonly string[];
  /** Qubes the call names that are no visible target (a tombstone), for the audit. */
  named?(input: I): readonly string[];
  /**
   * For a call on what the principal owns but does not see (its
   * tombstones): why this snapshot refuses it, checked with the targets,
   * before the gate and the audit intent; null when it may go on. SCOPE is
   * the call's, read before the snapshot: nothing read here may depend on
   * whether the named qube exists.
   */
  admits?(input: I, snapshot: Snapshot, principal: string, scope: ScopeRules): string | null;
  handle(ctx: HandlerContext<I>): Promise<unknown>;
}

export interface ServiceConfig {
  readonly principal: string;
  readonly scope: ScopeRules;
  readonly limits: InputLimits;
  readonly slotsDir: string;
  readonly slotCount: number;
  /** The installed settings, for the action gate (what asks, deadline, cap, binding). */
  readonly settings: Settings;
  /** Where requests wait for the operator (var/lib/qmcp/approvals under the root). */
  readonly approvalsDir: string;
}

export interface ServiceRuntime {
  readonly env: NodeJS.ProcessEnv;
  readonly stdin: Readable;
  readonly io: ServiceIo;
  readonly qubesd: Qubesd;
  readonly audit: AuditLog;
  /** Settings as read for this call; null when they are unusable (refuse). */
  readonly config: ServiceConfig | null;
  /** The operator's channel (journal): precise reasons, never shown to the caller. */
  readonly log: (message: string) => void;
  /** The action gate's seams; a call the gate asks about is refused without them. */
  readonly gate?: GateSeams;
}

/**
 * Runs one dom0 service call through the shared guards, in order: qrexec
 * environment, caller, concurrency, bounded input, shape, scope and tier on
 * one snapshot, the action gate (gate-step.ts), audit intent, the operation,
 * audit outcome. Every refusal is the uniform one; only in-scope
 * ActionableErrors say more.
 */
export async function runService(
  table: ReadonlyMap<string, ServiceSpec<unknown>>,
  rt: ServiceRuntime,
): Promise<number> {
  const call = readServiceCall(rt.env);
  const spec = call ? table.get(call.service) : undefined;
  const caller = call?.caller ?? rt.env['QREXEC_REMOTE_DOMAIN'] ?? 'unknown';
  const operation = spec?.operation ?? 'unknown';
  let qubes: string[] = [];
  const refusal = async (reason: string, audited = false): Promise<number> => {
    rt.log(`refused ${call?.service ?? 'a call that is not a known qmcp service'} from ${caller}: ${reason}`);
    try {
      if (!audited) await rt.audit.refusal({ principal: caller, operation, qubes, detail: reason });
    } catch (err) {
      rt.log(`audit refusal entry failed: ${(err as Error).message}`);
    }
    return refuse(rt.io);
  };
  if (!call || !spec) return refusal('not a known qmcp service call');
  try {
    return await guarded(call, spec, rt, refusal, (named) => {
      qubes = named;
    });
  } catch (err) {
    // Whatever failed (qubesd unreachable, a reply that does not parse), the caller gets the refusal and the operator the reason.
    return refusal(`failed before acting: ${describe(err)}`);
  }
}

function describe(err: unknown): string {
  if (err instanceof QubesdError) return `${err.errorClass}: ${err.message}`;
  const e = err as NodeJS.ErrnoException;
  return `${e?.name ?? 'Error'}${e?.code ? ` ${e.code}` : ''}: ${e?.message ?? String(err)}`;
}

async function guarded(
  call: ServiceCall,
  spec: ServiceSpec<unknown>,
  rt: ServiceRuntime,
  refusal: (reason: string, audited?: boolean) => Promise<number>,
  naming: (qubes: string[]) => void,
): Promise<number> {
  const caller = call.caller;
  const config = rt.config;
  if (!config) return refusal('settings unusable or model hash mismatch');
  if (caller !== config.principal) return refusal('caller is not the principal');
  let slot: HeldLock | null = await acquireSlot(config.slotsDir, caller, config.slotCount);
  if (!slot) return refusal('too many concurrent calls');
  try {
    const payload = await readBounded(rt.stdin, config.limits);
    if (!payload) return refusal('payload too large or too slow');
    let input: unknown;
    try {
      input = spec.parse(call.argument, payload);
    } catch (err) {
      if (!(err instanceof ActionableError)) throw err;
      // before any lookup: it depends on the call's bytes and the settings alone
      await rt.audit.refusal({ principal: caller, operation: spec.operation, qubes: [], detail: `input: ${err.kind}` }).catch((e: Error) => rt.log(`audit refusal entry failed: ${e.message}`));
      return answerError(rt.io, err.kind, err.message);
    }
    if (input === null) return refusal('malformed argument or payload');

    const needs = spec.targets(input);
    const qubes = [...needs.map((n) => n.name), ...(spec.named?.(input) ?? [])];
    naming(qubes);
    const reads = spec.reads === 'named' ? [...qubes, ...(spec.refers?.(input) ?? [])] : undefined;
    let snapshot = await Snapshot.take(rt.qubesd, config.scope, reads);
    const checked = visibleTargets(snapshot, needs);
    if (typeof checked === 'string') return refusal(checked);
    const refused = spec.admits?.(input, snapshot, caller, config.scope) ?? null;
    if (refused !== null) return refusal(refused);
    let targets: readonly QubeFacts[] = checked;

    const gate = await gateStep({
      rt,
      config,
      call,
      operation: spec.operation,
      payload,
      needs,
      reads,
      slot: {
        release: async () => {
          await slot?.release();
          slot = null;
        },
        reacquire: async () => {
          slot = await reacquireSlot(config.slotsDir, caller, config.slotCount);
          return slot !== null;
        },
      },
    });
    if (gate.kind === 'refuse') return refusal(gate.reason, gate.audited);
    if (gate.kind === 'act') {
      snapshot = gate.snapshot;
      targets = gate.targets;
    }

    let correlation: string | null = null;
    if (spec.changesState) {
      try {
        const keys = spec.keys ? spec.keys(input) : undefined;
        const fields = { principal: caller, operation: spec.operation, qubes, ...(keys ? { keys } : {}) };
        // an approved call's intent carries its request's correlation
        correlation = await rt.audit.intent(fields, gate.kind === 'act' ? gate.correlation : undefined);
      } catch (err) {
        return refusal(`audit intent could not be written: ${(err as Error).message}`);
      }
    }
    const finish = async (result: 'ok' | 'error' | 'failed' | 'refused', detail?: string): Promise<void> => {
      if (correlation === null) return;
      try {
        await rt.audit.outcome(correlation, { result, ...(detail ? { detail } : {}) });
      } catch (err) {
        rt.log(`audit outcome entry failed: ${(err as Error).message}`);
      }
    };
    try {
      const result = await spec.handle({ input, principal: caller, qubesd: rt.qubesd, snapshot, targets });
      await finish('ok');
      return answer(rt.io, result);
    } catch (err) {
      if (err instanceof ActionableError) {
        await finish('error', err.kind);
        return answerError(rt.io, err.kind, err.message);
      }
      if (err instanceof ServiceRefusal) {
        await finish('refused', err.reason);
        return refusal(err.reason);
      }
      const cls = err instanceof QubesdError ? err.errorClass : (err as Error).name;
      await finish('failed', cls);
      rt.log(`${spec.operation} failed: ${describe(err)}`);
      // a read has no intent, so its failure is recorded as a refusal with the reason
      if (correlation === null) return refusal(`failed: ${cls}`);
      return refuse(rt.io);
    }
  } finally {
    await slot?.release();
  }
}
