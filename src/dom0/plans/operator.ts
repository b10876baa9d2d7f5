/**
 * `qmcp dom0 plans`: the operator lists, reads, approves or denies the
 * plans the agent submitted. An approval binds the plan's digest, the
 * settings and the model, and an expiry; it is used once, by the command
 * that gave it, which then runs the plan in the foreground.
 */
import { userInfo } from 'node:os';
import { QmcpError } from '../../shared/errors.js';
import { OPERATIONS } from '../../shared/model/capabilities.js';
import { modelHash, settingsDigest } from '../../shared/model/index.js';
import { PLAN_ID } from '../../shared/plan-protocol.js';
import type { AuditLog } from '../audit/index.js';
import { quote } from '../audit/index.js';
import { describeCall } from '../gate/describe.js';
import type { Qubesd } from '../qubesd.js';
import { loadDom0Config } from '../service/config.js';
import { runPlan, type RunDeps } from './execute.js';
import { createsQube } from './check.js';
import { allPlans, APPROVAL_VALID_MS, noteLapses, planDigest, planState, readPlan, thisRunner, withPlanLock, writePlan, type PlanRecord, type StoredStep } from './store.js';

/** The operator's request cannot be carried out (no such plan, not pending, changed since submitted). */
export class PlanRefusal extends QmcpError {
  readonly code = 'ERR_QMCP_PLAN_REFUSED';
}

export interface PlanOperatorDeps extends RunDeps {
  readonly qubesd: Qubesd;
  readonly audit: AuditLog;
  /** Who answers, for the audit log. */
  readonly operator?: string;
  /** Told once an approval is recorded, before the plan runs. */
  readonly approved?: (plan: PlanRecord) => void;
}

/** The operator as the audit log names them: the user behind sudo, else the one running the command. */
export function operatorName(env: NodeJS.ProcessEnv = process.env): string {
  return env['SUDO_USER'] || userInfo().username;
}

/** The plan a reference names: `ID`, or `PRINCIPAL/ID` when two principals have that id. */
export function findPlan(root: string, ref: string): PlanRecord {
  const slash = ref.indexOf('/');
  const id = slash < 0 ? ref : ref.slice(slash + 1);
  if (!PLAN_ID.test(id)) throw new PlanRefusal(`not a plan id: ${quote(ref)}`);
  if (slash >= 0) {
    const p = readPlan(root, ref.slice(0, slash), id);
    if (p === null) throw new PlanRefusal(`no plan ${quote(ref)}`);
    return p;
  }
  const found = allPlans(root).filter((p) => p.id === id);
  if (found.length > 1) throw new PlanRefusal(`plan ${id} is ambiguous: name it as ${found.map((p) => quote(`${p.principal}/${id}`)).join(' or ')}`);
  if (found[0] === undefined) throw new PlanRefusal(`no plan ${id}`);
  return found[0];
}

/** Records the plans that lapsed since dom0 last looked, for every principal (their audit entries). */
export async function noteAllLapses(d: Pick<PlanOperatorDeps, 'root' | 'audit' | 'now'>): Promise<void> {
  for (const principal of new Set(allPlans(d.root).map((p) => p.principal))) await noteLapses(d.root, principal, d.audit, d.now());
}

/** One line per plan, newest last (PRINCIPAL: that principal's alone). */
export function listLines(root: string, now: Date, principal?: string): string[] {
  return allPlans(root).filter((p) => principal === undefined || p.principal === principal).map((p) => {
    const state = planState(p, now);
    const when = state === 'pending' ? `lapses ${p.lapses}` : `submitted ${p.submitted}`;
    return `${p.id}  ${state}  by ${quote(p.principal)}  ${p.steps.length} steps  ${when}  purpose ${quote(p.purpose)}`;
  });
}

/** The plan as the operator reviews it: who, why (the agent's words, quoted), when it lapses, then each step in plain language. */
export async function showLines(d: PlanOperatorDeps, plan: PlanRecord): Promise<string[]> {
  const config = loadDom0Config(d.root, () => undefined, undefined, plan.principal);
  const now = d.now();
  const state = planState(plan, now);
  const lines = [
    `plan ${plan.id}, submitted by ${quote(plan.principal)} at ${plan.submitted}: ${state}${state === 'pending' ? `, lapses at ${plan.lapses}` : ''}`,
    `purpose (the agent's words): ${quote(plan.purpose)}`,
    `digest ${plan.digest}`,
  ];
  if (config === null) lines.push('the dom0 services refuse every call now (settings unusable or the model changed): run qmcp dom0 doctor');
  const created = new Map<string, number>();
  for (const [i, s] of plan.steps.entries()) {
    const r = plan.results[i];
    const ran = r && r.state !== 'pending' ? ` [${r.state}${r.status !== undefined ? `, exit status ${r.status}` : ''}]` : '';
    lines.push(`step ${i + 1} of ${plan.steps.length}${ran}:`);
    if (config === null) continue;
    const call = { principal: plan.principal, operation: s.operation, argument: s.argument, payload: Buffer.from(s.payload, 'base64'), ...(s.qube !== undefined ? { target: s.qube } : {}) };
    for (const line of await describeCall(call, { qubesd: d.qubesd, settings: config.settings, now })) lines.push(`  ${line}`);
    for (const name of new Set([s.qube, s.argument])) {
      const by = name === undefined ? undefined : created.get(name);
      if (by !== undefined) lines.push(`  ${quote(name as string)} is the qube step ${by} of this plan creates`);
    }
    const made = createdName(s);
    if (made !== null && !created.has(made)) created.set(made, i + 1);
  }
  return lines;
}

/** The qube a create step makes, by the name in its payload; null for any other step. */
function createdName(s: StoredStep): string | null {
  const op = OPERATIONS.find((o) => o.id === s.operation);
  if (op === undefined || !createsQube(op)) return null;
  try {
    const name = (JSON.parse(Buffer.from(s.payload, 'base64').toString('utf8')) as { name?: unknown }).name;
    return typeof name === 'string' ? name : null;
  } catch {
    return null;
  }
}

/** Under the plan's lock: the plan as it is now, which must still be pending; `change` gives what it becomes. */
async function answer(d: PlanOperatorDeps, ref: string, change: (p: PlanRecord) => Promise<PlanRecord>): Promise<PlanRecord> {
  const named = findPlan(d.root, ref);
  const done = await withPlanLock(d.root, named.principal, async () => {
    const p = readPlan(d.root, named.principal, named.id);
    if (p === null) throw new PlanRefusal(`no plan ${named.id}`);
    const state = planState(p, d.now());
    if (state !== 'pending') throw new PlanRefusal(`plan ${p.id} is ${state}: only a pending plan can be answered`);
    if (planDigest(p.principal, p.purpose, p.steps) !== p.digest) throw new PlanRefusal(`plan ${p.id} changed since it was submitted: its steps no longer match its digest`);
    const next = await change(p);
    writePlan(d.root, next);
    return next;
  });
  if (done === null) throw new PlanRefusal('the plans are locked by another command: try again');
  return done;
}

/** Approves the plan and runs it; resolves to the plan as it ended. */
export async function approvePlan(d: PlanOperatorDeps, ref: string): Promise<PlanRecord> {
  const approved = await recordApproval(d, ref);
  d.approved?.(approved);
  return runPlan(d, approved);
}

/** Records the operator's approval of a pending plan, bound to its digest, the settings and model, and an expiry. */
export async function recordApproval(d: PlanOperatorDeps, ref: string): Promise<PlanRecord> {
  const by = d.operator ?? operatorName();
  return answer(d, ref, async (p) => {
    // bound to the submitter's settings, which its run reads
    const config = loadDom0Config(d.root, d.log, undefined, p.principal);
    if (config === null) throw new PlanRefusal('the settings are unusable or the model changed: the services refuse every call (run qmcp dom0 doctor)');
    const now = d.now();
    await d.audit.gate({ kind: 'plan', principal: p.principal, operation: 'plan.submit', qubes: [], correlation: p.correlation, result: 'ok', detail: `plan ${p.id} approved by ${by} (cli)` });
    return {
      ...p,
      state: 'approved',
      answer: { by, how: 'cli', at: now.toISOString() },
      approval: { digest: p.digest, settings: settingsDigest(config.settings), model: modelHash(), expires: new Date(now.getTime() + APPROVAL_VALID_MS).toISOString() },
      // this command runs the plan: once it is gone the plan reads as interrupted, never resumed
      runner: thisRunner(),
    };
  });
}

export async function denyPlan(d: PlanOperatorDeps, ref: string): Promise<PlanRecord> {
  const by = d.operator ?? operatorName();
  return answer(d, ref, async (p) => {
    await d.audit.gate({ kind: 'plan', principal: p.principal, operation: 'plan.submit', qubes: [], correlation: p.correlation, result: 'refused', detail: `plan ${p.id} denied by ${by} (cli)` });
    return { ...p, state: 'denied', answer: { by, how: 'cli', at: d.now().toISOString() } };
  });
}
