/**
 * A plan's steps checked as dom0 checks a call: shape first (a dom0
 * service's own parse; for an Admin API call an empty payload; for an
 * in-qube call the request as the shared protocol encodes it), then scope and tier of every qube a step names, on one snapshot. A
 * step may name a qube an earlier step of the plan creates: it is checked
 * against the tier that creation gives it, and again, live, when it runs.
 */
import {
  decodeCopyToRequest,
  decodeExecRequest,
  decodeListDirRequest,
  decodeReadFileRequest,
  decodeStatRequest,
  decodeWriteFileRequest,
} from '../../shared/inqube-protocol.js';
import type { Operation } from '../../shared/model/capabilities.js';
import { OPERATIONS } from '../../shared/model/capabilities.js';
import { isQubeName } from '../../shared/names.js';
import type { PlanStep } from '../../shared/plan-protocol.js';
import { steppable } from '../../shared/plan-protocol.js';
import { birthTier } from '../create/tags.js';
import type { WriteSettings } from '../create/settings.js';
import type { ServiceSpec, TargetNeed } from '../service/run.js';
import type { QubeFacts, Snapshot } from '../service/snapshot.js';
import { atLeast } from '../service/snapshot.js';

/** Longest command a plan may run, in seconds: a run step holds the operator's command while it runs. */
const MAX_RUN_SECONDS = 3600;

export interface CheckedStep {
  readonly step: PlanStep;
  readonly op: Operation;
  /** A dom0-service step's input as its handler parsed it. */
  readonly input?: unknown;
  /** The qubes the step acts on, each with the tier it needs. */
  readonly needs: readonly TargetNeed[];
  /** A copy's destination: a qube the agent may run commands in, or a sink. */
  readonly copyTo?: string;
  /** The qube a create step makes, from its source (its first need). */
  readonly creates?: string;
}

/** What an in-qube step's request must be, by operation. */
const IN_QUBE: Readonly<Record<string, (payload: Buffer, argument: string) => boolean>> = {
  run: (p, a) => {
    const r = decodeExecRequest(p);
    return a === '' && r !== null && (r.timeoutSeconds ?? 0) >= 1 && (r.timeoutSeconds ?? 0) <= MAX_RUN_SECONDS;
  },
  'file.write': (p, a) => a === '' && decodeWriteFileRequest(p) !== null,
  'file.read': (p, a) => a === '' && decodeReadFileRequest(p) !== null,
  'dir.list': (p, a) => a === '' && decodeListDirRequest(p) !== null,
  'file.stat': (p, a) => a === '' && decodeStatRequest(p) !== null,
  copy: (p, a) => isQubeName(a) && decodeCopyToRequest(p) !== null,
};

/** The dom0-service operations that make a qube: they add, and are not the plan's own. */
export function createsQube(op: Operation): boolean {
  return op.target === 'dom0-service' && !op.readOnly && !op.idempotent && steppable(op);
}

/** One step's shape; null when it is malformed. */
export function checkShape(step: PlanStep, handlers: ReadonlyMap<string, ServiceSpec<unknown>>): CheckedStep | null {
  const op = OPERATIONS.find((o) => o.id === step.operation);
  if (op === undefined || !steppable(op)) return null;
  if (op.target === 'dom0-service') {
    const spec = handlers.get(op.id);
    const input = spec?.parse(step.argument, step.payload) ?? null;
    if (spec === undefined || input === null) return null;
    const needs = spec.targets(input);
    const name = (input as { name?: unknown }).name;
    if (!createsQube(op)) return { step, op, input, needs };
    return typeof name === 'string' && needs.length > 0 ? { step, op, input, needs, creates: name } : null;
  }
  const qube = step.qube;
  if (!isQubeName(qube)) return null;
  const needs = [{ name: qube, tier: op.tier }];
  if (op.target === 'admin-api') return step.payload.length === 0 && step.argument === '' ? { step, op, needs } : null;
  const valid = IN_QUBE[op.id];
  if (valid === undefined || !valid(step.payload, step.argument)) return null;
  return op.id === 'copy' ? { step, op, needs, copyTo: step.argument } : { step, op, needs };
}

/** The names a plan looks up on the snapshot: every need but of a qube an earlier step creates. */
export function lookedUp(steps: readonly CheckedStep[]): TargetNeed[] {
  const created = new Set<string>();
  const out: TargetNeed[] = [];
  for (const s of steps) {
    out.push(...s.needs.filter((n) => !created.has(n.name)));
    if (s.creates !== undefined) created.add(s.creates);
  }
  return out;
}

/**
 * Why the plan reaches outside the agent's world or above its tiers, for
 * the operator; null when every step stays inside. A created qube is taken
 * as born: the umbrella, and the tier its source gives it.
 */
export function outOfReach(steps: readonly CheckedStep[], snapshot: Snapshot, settings: WriteSettings): string | null {
  const born = new Map<string, QubeFacts>();
  const facts = (name: string): QubeFacts | undefined => born.get(name) ?? snapshot.visible(name);
  for (const [i, s] of steps.entries()) {
    for (const need of s.needs) {
      const q = facts(need.name);
      if (!q || !atLeast(snapshot.tier(q), need.tier)) return `step ${i + 1}: ${q ? `tier below ${need.tier}` : 'not visible'}`;
    }
    if (s.copyTo !== undefined) {
      const to = facts(s.copyTo);
      if (to ? !atLeast(snapshot.tier(to), 'exec') : !snapshot.sink(s.copyTo)) return `step ${i + 1}: copy destination neither exec-capable nor a sink`;
    }
    const source = s.needs[0];
    if (s.creates !== undefined && source !== undefined) {
      const from = facts(source.name) as QubeFacts;
      const tier = birthTier(from, settings);
      const tags = new Set([settings.scope.umbrella, ...(tier === 'read' ? [] : [settings.scope.elevation[tier]])]);
      born.set(s.creates, { name: s.creates, klass: from.klass, state: 'Halted', tags });
    }
  }
  return null;
}
