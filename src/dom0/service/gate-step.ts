/**
 * The action gate inside a dom0 service call (docs/action-gate.md). It runs
 * after shape, scope and tier, so only a call the agent could make now ever
 * asks. It records the request, waits without holding a concurrency slot,
 * and on an approval checks the binding, the settings and the targets again
 * on a fresh snapshot before the call may act.
 */
import type { Writable } from 'node:stream';
import { OPERATIONS } from '../../shared/model/capabilities.js';
import type { Operation } from '../../shared/model/capabilities.js';
import { gateOf } from '../../shared/model/gate.js';
import { settingsDigest } from '../../shared/model/hash.js';
import type { ResultClass } from '../audit/index.js';
import { requestDigest } from '../gate/digest.js';
import type { ApprovalAnswer, ApprovalRequest } from '../gate/store.js';
import { createRequest, endRequest, takeAnswer } from '../gate/store.js';
import { REAL_CLOCK, waitForAnswer } from '../gate/wait.js';
import type { Clock } from '../gate/wait.js';
import type { ServiceCall } from './request.js';
import type { ServiceConfig, ServiceRuntime } from './run.js';
import { Snapshot, visibleTargets } from './snapshot.js';
import type { QubeFacts, TargetNeed } from './snapshot.js';

/** What a service process gives the gate besides its runtime. */
export interface GateSeams {
  /** The installed settings read again after an approval; null when unusable. */
  readonly reload: () => ServiceConfig | null;
  readonly clock?: Clock;
  /** Calls `withdraw` when the service is told to stop (SIGTERM, SIGHUP) while it waits; returns the unsubscribe. */
  readonly onStop?: (withdraw: () => void) => () => void;
  /** Tells the operator a request waits (a desktop notification on a real dom0). */
  readonly notify?: (request: ApprovalRequest) => void;
}

export interface GateCall {
  readonly rt: ServiceRuntime;
  readonly config: ServiceConfig;
  readonly call: ServiceCall;
  readonly operation: string;
  readonly payload: Buffer;
  readonly needs: readonly TargetNeed[];
  /** The qubes the call's snapshot read, or undefined for the whole machine: the fresh one reads the same. */
  readonly reads: readonly string[] | undefined;
  readonly slot: { release(): Promise<void>; reacquire(): Promise<boolean> };
}

export type GateEnd =
  /** The gate does not ask for this operation. */
  | { readonly kind: 'pass' }
  /** Approved and checked again: act with these, under this correlation. */
  | { readonly kind: 'act'; readonly config: ServiceConfig; readonly snapshot: Snapshot; readonly targets: readonly QubeFacts[]; readonly correlation: string }
  /** The uniform refusal; `audited` when the gate's own entries already say why. */
  | { readonly kind: 'refuse'; readonly reason: string; readonly audited: boolean };

/** Runs the gate for one call whose targets passed scope and tier. */
export async function gateStep(g: GateCall): Promise<GateEnd> {
  const op = OPERATIONS.find((o) => o.id === g.operation);
  if (!op || gateOf(g.config.settings, op) !== 'ask') return { kind: 'pass' };
  const seams = g.rt.gate;
  if (!seams) return { kind: 'refuse', reason: 'the gate asks, and this runtime has no approval channel', audited: false };
  const clock = seams.clock ?? REAL_CLOCK;
  await g.slot.release();
  // listening before the request exists: a stop that comes once it is visible withdraws it, never kills the service outright
  const stop = new AbortController();
  const unsubscribe = seams.onStop?.(() => stop.abort()) ?? (() => undefined);
  try {
    return await waitedCall(g, op, seams, clock, stop.signal);
  } finally {
    unsubscribe();
  }
}

async function waitedCall(g: GateCall, op: Operation, seams: GateSeams, clock: Clock, stopped: AbortSignal): Promise<GateEnd> {
  const { rt, config, call } = g;
  const refuse = (reason: string, audited = false): GateEnd => ({ kind: 'refuse', reason, audited });
  const bound = { settingsDigest: settingsDigest(config.settings), modelHash: config.settings.model ?? '' };
  const digest = requestDigest({ principal: call.caller, operation: op.id, argument: call.argument, payload: g.payload, ...bound });
  const qubes = g.needs.map((n) => n.name);
  const dir = config.approvalsDir;
  const created = clock.now();
  const expires = created + config.settings.approvalDeadlineSeconds * 1000;
  let request: ApprovalRequest | null;
  try {
    request = await createRequest(
      dir,
      {
        principal: call.caller,
        operation: op.id,
        argument: call.argument,
        payload: g.payload.toString('base64'),
        qubes,
        digest,
        created: new Date(created).toISOString(),
        expires: new Date(expires).toISOString(),
      },
      {
        cap: config.settings.approvalPendingCap,
        audit: async (id) => (await rt.audit.gate({ kind: 'request', principal: call.caller, operation: op.id, qubes, result: null, detail: `request ${id}` })).correlation,
        // the service that made it died and wrote no end: say it here
        onStale: async (r) => {
          await rt.audit.gate({ kind: 'answer', principal: r.principal, operation: r.operation, qubes: r.qubes, correlation: r.correlation, result: 'refused', detail: 'stale' });
        },
      },
    );
  } catch (err) {
    return refuse(`approval request not recorded: ${(err as Error).message}`);
  }
  if (!request) return refuse('too many requests waiting for the operator');
  const correlation = request.correlation;
  const answered = async (result: ResultClass, detail: string): Promise<void> => {
    try {
      await rt.audit.gate({ kind: 'answer', principal: call.caller, operation: op.id, qubes, correlation, result, detail });
    } catch (err) {
      rt.log(`audit answer entry failed: ${(err as Error).message}`);
    }
  };
  rt.log(`request ${request.id}: ${op.id} on ${qubes.join(' ') || '(no qube)'} waits for the operator until ${request.expires}; qmcp dom0 approvals show ${request.id}`);
  seams.notify?.(request);

  let answer: ApprovalAnswer | 'malformed' | null;
  let end: string;
  try {
    const ended = await waitForAnswer({ clock, poll: () => takeAnswer(dir, request.id), keepalive: () => keepalive(rt.io.stdout), stop: stopped }, expires);
    answer = ended.end === 'answered' ? ended.answer : null;
    end = ended.end;
  } catch (err) {
    await endRequest(dir, request.id).catch(() => null);
    throw err;
  }
  // the request goes before anything acts, so its answer is used once; one that came in meanwhile is the last word
  answer = (await endRequest(dir, request.id)) ?? answer;

  if (answer === null) {
    await answered('refused', end);
    return refuse(end, true);
  }
  if (answer === 'malformed' || answer.id !== request.id || answer.nonce !== request.nonce || answer.digest !== digest) {
    await answered('refused', 'mismatch');
    return refuse('answer does not match the request', true);
  }
  const who = `${answer.decision} by ${answer.by} via ${answer.how}`;
  if (answer.decision !== 'allow') {
    await answered('refused', who);
    return refuse('denied by the operator', true);
  }
  await answered('ok', who);

  const after = async (detail: string): Promise<GateEnd> => {
    await answered('refused', detail);
    return refuse(`after approval: ${detail}`, true);
  };
  if (!(await g.slot.reacquire())) return after('busy');
  const fresh = seams.reload();
  if (!fresh || fresh.principal !== call.caller || settingsDigest(fresh.settings) !== bound.settingsDigest || (fresh.settings.model ?? '') !== bound.modelHash) {
    return after('rebound');
  }
  const snapshot = await Snapshot.take(rt.qubesd, fresh.scope, g.reads);
  const targets = visibleTargets(snapshot, g.needs);
  if (typeof targets === 'string') return after(`recheck: ${targets}`);
  return { kind: 'act', config: fresh, snapshot, targets, correlation };
}

/** One newline to the caller; false when it is gone (its pipe shut). */
function keepalive(out: Writable): Promise<boolean> {
  if (out.destroyed || out.writableEnded) return Promise.resolve(false);
  return new Promise((resolve) => {
    out.write('\n', (err) => resolve(!err));
  });
}
