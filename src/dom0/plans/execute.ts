/**
 * Runs an approved plan, in the operator's command: the steps in order,
 * each checked again as it starts (the settings and model the approval
 * bound, then scope and tier on a fresh snapshot: an approval never lifts
 * the tier ceiling), then made exactly as approved. A dom0-service step
 * runs through its handler, with its audit intent and outcome under the
 * plan's correlation; an Admin API step is the same call to qubesd; an
 * in-qube step goes through qrexec from dom0 into the qube. The first step
 * that fails stops the plan; the rest are skipped.
 */
import { qubesdCall } from '../../shared/adminapi/client.js';
import { decodeExecReply, decodeExecRequest, decodeReply, InQubeError } from '../../shared/inqube-protocol.js';
import { modelHash, settingsDigest } from '../../shared/model/index.js';
import type { PlanStep, StepState } from '../../shared/plan-protocol.js';
import type { AuditLog } from '../audit/index.js';
import type { ResultClass } from '../audit/entry.js';
import { readWriteSettings } from '../create/settings.js';
import type { WriteDeps } from '../create/deps.js';
import type { Qubesd } from '../qubesd.js';
import { QubesdError } from '../qubesd.js';
import { loadDom0Config, type Dom0Config } from '../service/config.js';
import { ActionableError, REFUSAL_EXIT_STATUS, ServiceRefusal } from '../service/refusal.js';
import type { ServiceSpec } from '../service/run.js';
import { atLeast, Snapshot, visibleTargets, type QubeFacts } from '../service/snapshot.js';
import { serviceHandlers } from '../services/index.js';
import { readDeps } from '../services/read-services.js';
import { checkShape, type CheckedStep } from './check.js';
import { callIntoQube, EXIT_PROBLEM, qrexecClientPath } from './qrexec-client.js';
import { stepOf, writePlan, type PlanRecord, type StepRecord } from './store.js';

/** How long an in-qube step other than a command may take. */
const IN_QUBE_TIMEOUT_MS = 300_000;

export interface RunDeps {
  readonly root: string;
  readonly qubesd: Qubesd;
  readonly audit: AuditLog;
  /** The operator's journal. */
  readonly log: (message: string) => void;
  now(): Date;
  /** dom0's qrexec-client; default the one under the root. */
  readonly qrexecClient?: string;
  /** Told as each step starts and ends, for the operator's terminal. */
  readonly report?: (step: number, state: StepState, detail: string) => void;
  /** True once the operator asked to stop: no further step starts (the one running ends as it would). */
  readonly stopping?: () => boolean;
}

/** How a step ended: its state, the reply the principal reads, the audit result and the reason for the operator. */
interface StepEnd {
  readonly state: 'done' | 'failed';
  readonly status: number;
  readonly output: Buffer;
  readonly result: ResultClass;
  readonly detail: string;
}

function refused(reason: string): StepEnd {
  return { state: 'failed', status: REFUSAL_EXIT_STATUS, output: Buffer.alloc(0), result: 'refused', detail: `refused: ${reason}` };
}

/** Why the approval no longer holds for the next step; null while it does. */
function bindingBroken(config: Dom0Config | null, plan: PlanRecord, now: Date): string | null {
  const a = plan.approval;
  if (a === undefined) return 'not approved';
  if (config === null) return 'the settings are unusable';
  if (config.settings.principal !== plan.principal) return 'the principal setting changed';
  if (settingsDigest(config.settings) !== a.settings) return 'the settings changed since the approval';
  if (config.settings.model !== a.model || modelHash() !== a.model) return 'the model changed since the approval';
  if (now.getTime() >= Date.parse(a.expires)) return 'the approval expired';
  return null;
}

function handlerFor(d: RunDeps, config: Dom0Config, operation: string): ServiceSpec<unknown> | undefined {
  const write: WriteDeps = { root: d.root, settings: () => readWriteSettings(d.root, d.log, config.settings.principal), log: d.log, now: () => d.now() };
  return serviceHandlers({ write, read: readDeps(config) }).find((h) => h.operation === operation);
}

/** The qubes a step acts on, at the tiers it needs, as they are now. */
function reach(s: CheckedStep, snapshot: Snapshot): { targets: QubeFacts[] } | { refusal: string } {
  const targets = visibleTargets(snapshot, s.needs);
  if (typeof targets === 'string') return { refusal: targets };
  if (s.copyTo !== undefined) {
    const to = snapshot.visible(s.copyTo);
    if (to ? !atLeast(snapshot.tier(to), 'exec') : !snapshot.sink(s.copyTo)) return { refusal: 'copy destination neither exec-capable nor a sink' };
  }
  return { targets };
}

/** Through the handler, as the service process would run it; its answer as the service would print it. */
async function dom0Step(d: RunDeps, plan: PlanRecord, spec: ServiceSpec<unknown>, s: CheckedStep, snapshot: Snapshot, targets: QubeFacts[]): Promise<StepEnd> {
  const qubes = s.needs.map((n) => n.name);
  const keys = spec.keys?.(s.input);
  const correlation = spec.changesState ? await d.audit.intent({ principal: plan.principal, operation: spec.operation, qubes, ...(keys ? { keys } : {}) }, plan.correlation) : null;
  const finish = async (result: ResultClass, detail?: string): Promise<void> => {
    if (correlation !== null) await d.audit.outcome(correlation, { result, ...(detail ? { detail } : {}) }).catch((err: Error) => d.log(`audit outcome entry failed: ${err.message}`));
  };
  try {
    const value = await spec.handle({ input: s.input, principal: plan.principal, qubesd: d.qubesd, snapshot, targets });
    await finish('ok');
    return { state: 'done', status: 0, output: Buffer.from(JSON.stringify(value) + '\n'), result: 'ok', detail: 'done' };
  } catch (err) {
    if (err instanceof ActionableError) {
      await finish('error', err.kind);
      return { state: 'failed', status: 1, output: Buffer.from(JSON.stringify({ error: { code: err.kind, message: err.message } }) + '\n'), result: 'error', detail: `${err.kind}: ${err.message}` };
    }
    const why = err instanceof ServiceRefusal ? err.reason : err instanceof QubesdError ? err.errorClass : (err as Error).name;
    await finish(err instanceof ServiceRefusal ? 'refused' : 'failed', why);
    return refused(why);
  }
}

/** The same Admin API call, made as dom0; the reply as qubesd gives it, an exception's message left out. */
async function adminStep(d: RunDeps, s: CheckedStep, qube: string): Promise<StepEnd> {
  const r = await qubesdCall(d.qubesd.socketPath, { method: s.op.service, dest: qube, payload: s.step.payload });
  if (r.ok) return { state: 'done', status: 0, output: Buffer.concat([Buffer.from('0\0'), r.data]), result: 'ok', detail: 'done' };
  if (r.errorClass === '') return { state: 'failed', status: 0, output: Buffer.alloc(0), result: 'failed', detail: 'qubesd answered nothing' };
  return { state: 'failed', status: 0, output: Buffer.from(`2\0${r.errorClass}\0\0\0`), result: 'error', detail: `qubesd: ${r.errorClass}` };
}

/** Why an in-qube reply is a failure, reading only the protocol's status (and a command's exit); null when it is not. */
function inQubeFailure(operation: string, reply: Buffer): string | null {
  try {
    if (operation !== 'run') {
      decodeReply(reply);
      return null;
    }
    const r = decodeExecReply(reply);
    if (r.timedOut) return 'the command timed out';
    return r.exitStatus === 0 ? null : `the command exited ${r.exitStatus}`;
  } catch (err) {
    return err instanceof InQubeError ? `the service reported ${err.kind}` : 'an unreadable reply';
  }
}

async function inQubeStep(d: RunDeps, s: CheckedStep, qube: QubeFacts): Promise<StepEnd> {
  // as the policy's autostart=no: a step never starts a qube by calling into it
  if (qube.state !== 'Running') return refused('not running');
  // a command is stopped by the service at its own timeout; leave it time to answer
  const timeoutMs = s.op.id === 'run' ? ((decodeExecRequest(s.step.payload)?.timeoutSeconds ?? 0) + 30) * 1000 : IN_QUBE_TIMEOUT_MS;
  const r = await callIntoQube(d.qrexecClient ?? qrexecClientPath(d.root), qube.name, s.op.service, s.step.argument, s.step.payload, timeoutMs);
  if (r.problem !== undefined) return { state: 'failed', status: EXIT_PROBLEM, output: Buffer.alloc(0), result: 'failed', detail: r.problem };
  const failure = r.status === 0 ? inQubeFailure(s.op.id, r.stdout) : `exit status ${r.status}`;
  return { state: failure === null ? 'done' : 'failed', status: r.status, output: r.stdout, result: failure === null ? 'ok' : 'error', detail: failure ?? 'done' };
}

async function runStep(d: RunDeps, plan: PlanRecord, step: PlanStep): Promise<StepEnd> {
  // the submitter's settings: its world, tiers, caps and gate
  const config = loadDom0Config(d.root, d.log, undefined, plan.principal);
  const broken = bindingBroken(config, plan, d.now());
  if (broken !== null || config === null) return refused(broken ?? 'the settings are unusable');
  const spec = handlerFor(d, config, step.operation);
  let s: CheckedStep | null;
  try {
    s = checkShape(step, new Map(spec ? [[spec.operation, spec]] : []));
  } catch (err) {
    if (!(err instanceof ActionableError)) throw err;
    s = null;
  }
  if (s === null) return refused('malformed');
  const snapshot = await Snapshot.take(d.qubesd, config.service.scope);
  const reached = reach(s, snapshot);
  if ('refusal' in reached) return refused(reached.refusal);
  const [first] = reached.targets;
  if (s.op.target === 'dom0-service' && spec) return dom0Step(d, plan, spec, s, snapshot, reached.targets);
  if (first === undefined) return refused('no target');
  return s.op.target === 'admin-api' ? adminStep(d, s, first.name) : inQubeStep(d, s, first);
}

/** Runs the approved PLAN to its end or its first failure, recording each step as it goes; resolves to the plan as it ended. */
export async function runPlan(d: RunDeps, approved: PlanRecord): Promise<PlanRecord> {
  const results: StepRecord[] = approved.steps.map(() => ({ state: 'pending' }));
  let plan: PlanRecord = { ...approved, state: 'running', results };
  writePlan(d.root, plan);
  const entry = (operation: string, qubes: string[], result: ResultClass | null, detail: string): Promise<unknown> =>
    d.audit.gate({ kind: 'plan', principal: plan.principal, operation, qubes, correlation: plan.correlation, result, detail: `plan ${plan.id} ${detail}` });
  let stopped = false;
  for (const [i, stored] of approved.steps.entries()) {
    const n = i + 1;
    if (!stopped && d.stopping?.() === true) {
      d.log(`plan ${plan.id} of ${plan.principal} stopped by the operator before step ${n}`);
      stopped = true;
    }
    if (stopped) {
      results[i] = { state: 'skipped' };
      continue;
    }
    const step = stepOf(stored);
    const qubes = [step.qube ?? step.argument].filter((q) => q !== '');
    results[i] = { state: 'running' };
    writePlan(d.root, plan);
    d.report?.(n, 'running', '');
    let end: StepEnd;
    try {
      await entry(step.operation, qubes, null, `step ${n} started`);
      end = await runStep(d, plan, step);
    } catch (err) {
      // the audit log or qubesd out of reach: the step is not made, or its end is unknown
      end = { state: 'failed', status: REFUSAL_EXIT_STATUS, output: Buffer.alloc(0), result: 'failed', detail: (err as Error).message };
    }
    results[i] = { state: end.state, status: end.status, output: end.output.toString('base64') };
    await entry(step.operation, qubes, end.result, `step ${n} ${end.state}`).catch((err: Error) => d.log(`audit entry failed: ${err.message}`));
    writePlan(d.root, plan);
    d.report?.(n, end.state, end.detail);
    if (end.state === 'failed') {
      d.log(`plan ${plan.id} of ${plan.principal} stopped at step ${n}: ${end.detail}`);
      stopped = true;
    }
  }
  plan = { ...plan, state: stopped ? 'failed' : 'done' };
  writePlan(d.root, plan);
  await entry('plan.submit', [], stopped ? 'failed' : 'ok', stopped ? 'stopped' : 'done').catch((err: Error) => d.log(`audit entry failed: ${err.message}`));
  return plan;
}
