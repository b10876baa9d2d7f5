/**
 * The plans a principal submitted, one file each under
 * ROOT/var/lib/qmcp/plans/PRINCIPAL/ID.json (dom0's alone: mode 0700),
 * written atomically. Ids count each principal's own submissions, so what
 * a principal sees of them depends on nothing but its own calls.
 */
import { createHash } from 'node:crypto';
import { chownSync, mkdirSync, readdirSync, readFileSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { stateDir } from '../create/deps.js';
import type { AuditLog } from '../audit/index.js';
import { processStartTime } from '../gate/store.js';
import { writeAtomic } from '../install/files.js';
import { LockBusyError, withLock } from '../lockfile.js';
import { isQubeName } from '../../shared/names.js';
import { PLAN_ID } from '../../shared/plan-protocol.js';
import type { PlanState, PlanStep, StepState } from '../../shared/plan-protocol.js';

/** A pending plan lapses this long after its submission. */
export const PLAN_LAPSE_MS = 60 * 60 * 1000;
/** An approval lets steps start for this long. */
export const APPROVAL_VALID_MS = 60 * 60 * 1000;
/** Ended plans kept per principal; older ones are removed at the next submission. */
export const KEPT_ENDED = 32;
const LOCK_WAIT_MS = 5_000;

/** A step as stored: its exact call, the payload as base64. */
export interface StoredStep {
  readonly operation: string;
  readonly qube?: string;
  readonly argument: string;
  readonly payload: string;
}

export interface StepRecord {
  readonly state: StepState;
  readonly status?: number;
  /** The reply's stdout, base64. */
  readonly output?: string;
}

/** What the operator's approval binds: the plan, the settings and model it runs under, and how long it may start steps. */
export interface Approval {
  readonly digest: string;
  readonly settings: string;
  readonly model: string;
  readonly expires: string;
}

export interface PlanRecord {
  readonly id: string;
  readonly principal: string;
  /** Ties the plan's audit entries together. */
  readonly correlation: string;
  readonly purpose: string;
  readonly submitted: string;
  readonly lapses: string;
  /** planDigest at submission. */
  readonly digest: string;
  readonly steps: readonly StoredStep[];
  /** A pending plan past `lapses` reads as lapsed (planState) and is recorded so once seen (recordLapses). */
  readonly state: Exclude<PlanState, 'interrupted'>;
  readonly answer?: { readonly by: string; readonly how: string; readonly at: string };
  readonly approval?: Approval;
  readonly results: readonly StepRecord[];
  /** The operator's command that approved and runs the plan, so a dead one reads as interrupted. */
  readonly runner?: { readonly pid: number; readonly startTime: string };
}

export function plansDir(root: string): string {
  return join(stateDir(root), 'plans');
}

function principalDir(root: string, principal: string): string {
  return join(plansDir(root), principal);
}

export function storedStep(s: PlanStep): StoredStep {
  return { operation: s.operation, ...(s.qube !== undefined ? { qube: s.qube } : {}), argument: s.argument, payload: s.payload.toString('base64') };
}

export function stepOf(s: StoredStep): PlanStep {
  return { operation: s.operation, ...(s.qube !== undefined ? { qube: s.qube } : {}), argument: s.argument, payload: Buffer.from(s.payload, 'base64') };
}

/** sha256 over who submitted the plan, its purpose and every step's operation, qube, argument and payload bytes. */
export function planDigest(principal: string, purpose: string, steps: readonly StoredStep[]): string {
  const body = JSON.stringify([principal, purpose, steps.map((s) => [s.operation, s.qube ?? '', s.argument, s.payload])]);
  return createHash('sha256').update(body, 'utf8').digest('hex');
}

/** This process as a plan's runner. */
export function thisRunner(): { pid: number; startTime: string } {
  const startTime = processStartTime(process.pid);
  if (startTime === null) throw new Error("cannot read this process's start time from /proc");
  return { pid: process.pid, startTime };
}

/** Whether the command that approved the plan and runs it is gone (its pid dead, or another process's now). */
function runnerGone(p: PlanRecord): boolean {
  return p.runner !== undefined && processStartTime(p.runner.pid) !== p.runner.startTime;
}

export function planState(p: PlanRecord, now: Date): PlanState {
  if (p.state === 'pending' && now.getTime() >= Date.parse(p.lapses)) return 'lapsed';
  if ((p.state === 'approved' || p.state === 'running') && runnerGone(p)) return 'interrupted';
  return p.state;
}

function isString(v: unknown): v is string {
  return typeof v === 'string';
}

/** A record as this module writes it; anything else reads as no plan. */
function recordOf(v: unknown): PlanRecord | null {
  if (typeof v !== 'object' || v === null) return null;
  const p = v as Partial<PlanRecord>;
  const fields = [p.id, p.principal, p.correlation, p.purpose, p.submitted, p.lapses, p.digest, p.state];
  if (!fields.every(isString) || !Array.isArray(p.steps) || !Array.isArray(p.results) || p.results.length !== p.steps.length) return null;
  const stepsOk = p.steps.every((s: Partial<StoredStep>) => isString(s.operation) && isString(s.argument) && isString(s.payload) && (s.qube === undefined || isString(s.qube)));
  return stepsOk ? (p as PlanRecord) : null;
}

/** The principal's plan ID, or null when there is none (or its file is not one this module wrote). */
export function readPlan(root: string, principal: string, id: string): PlanRecord | null {
  if (!isQubeName(principal) || !PLAN_ID.test(id)) return null;
  let text: string;
  try {
    text = readFileSync(join(principalDir(root, principal), `${id}.json`), 'utf8');
  } catch {
    return null;
  }
  try {
    const p = recordOf(JSON.parse(text));
    return p !== null && p.principal === principal && p.id === id ? p : null;
  } catch {
    return null;
  }
}

/** Owned by whoever owns qmcp's state directory, so the services can still read what an operator's root shell wrote. */
function keepOwner(root: string, path: string): void {
  if (process.getuid?.() !== 0) return;
  const { uid, gid } = statSync(stateDir(root));
  chownSync(path, uid, gid);
}

function ensureDir(root: string, dir: string): void {
  for (const d of [plansDir(root), dir]) {
    mkdirSync(d, { recursive: true, mode: 0o700 });
    keepOwner(root, d);
  }
}

export function writePlan(root: string, p: PlanRecord): void {
  const dir = principalDir(root, p.principal);
  ensureDir(root, dir);
  const path = join(dir, `${p.id}.json`);
  writeAtomic(path, Buffer.from(JSON.stringify(p, null, 1) + '\n', 'utf8'), 0o600);
  keepOwner(root, path);
}

/** The ids of a principal's plans, oldest first. */
function ids(root: string, principal: string): string[] {
  let names: string[];
  try {
    names = readdirSync(principalDir(root, principal));
  } catch {
    return [];
  }
  return names
    .map((n) => /^([1-9][0-9]{0,8})\.json$/.exec(n)?.[1])
    .filter((n): n is string => n !== undefined)
    .sort((a, b) => Number(a) - Number(b));
}

/** Every plan of every principal, oldest first within each principal. */
export function allPlans(root: string): PlanRecord[] {
  let principals: string[];
  try {
    principals = readdirSync(plansDir(root)).filter(isQubeName).sort();
  } catch {
    return [];
  }
  return principals.flatMap((pr) => ids(root, pr).map((id) => readPlan(root, pr, id)).filter((p): p is PlanRecord => p !== null));
}

/** The principal's plans as `allPlans` reads them. */
export function plansOf(root: string, principal: string): PlanRecord[] {
  return ids(root, principal).map((id) => readPlan(root, principal, id)).filter((p): p is PlanRecord => p !== null);
}

/**
 * Runs `work` holding the principal's plan lock: submissions (the pending
 * cap and the next id) and every change of a plan's state take it. Null
 * when the lock stayed busy.
 */
export async function withPlanLock<T>(root: string, principal: string, work: () => Promise<T> | T): Promise<T | null> {
  const dir = principalDir(root, principal);
  ensureDir(root, dir);
  try {
    return await withLock(join(dir, '.lock'), LOCK_WAIT_MS, async () => work());
  } catch (err) {
    if (err instanceof LockBusyError) return null;
    throw err;
  }
}

/**
 * Records each of the principal's plans that lapsed unanswered: its state,
 * and a `plan` audit entry under its correlation, once. A plan lapses by
 * the clock, so this runs whenever dom0 reads the principal's plans (a
 * submission, plan_status, the operator's commands); call with the plan
 * lock held.
 */
export async function recordLapses(root: string, principal: string, audit: Pick<AuditLog, 'gate'>, now: Date): Promise<void> {
  for (const p of plansOf(root, principal)) {
    if (p.state !== 'pending' || planState(p, now) !== 'lapsed') continue;
    writePlan(root, { ...p, state: 'lapsed' });
    await audit.gate({ kind: 'plan', principal, operation: 'plan.submit', qubes: [], correlation: p.correlation, result: 'refused', detail: `plan ${p.id} lapsed` });
  }
}

/** recordLapses under the principal's plan lock, taken only when a plan lapsed unrecorded. */
export async function noteLapses(root: string, principal: string, audit: Pick<AuditLog, 'gate'>, now: Date): Promise<void> {
  if (!plansOf(root, principal).some((p) => p.state === 'pending' && planState(p, now) === 'lapsed')) return;
  await withPlanLock(root, principal, () => recordLapses(root, principal, audit, now));
}

/** The next id of the principal's plans; call with its plan lock held. */
export function nextId(root: string, principal: string): string {
  const path = join(principalDir(root, principal), 'last-id');
  let last = 0;
  try {
    last = Number(readFileSync(path, 'utf8').trim()) || 0;
  } catch {
    // the first plan
  }
  const highest = ids(root, principal).at(-1);
  const next = Math.max(last, Number(highest ?? 0)) + 1;
  writeAtomic(path, Buffer.from(`${next}\n`), 0o600);
  keepOwner(root, path);
  return String(next);
}

/** Removes the principal's ended plans beyond the newest KEPT_ENDED; call with its plan lock held. */
export function pruneEnded(root: string, principal: string, now: Date): void {
  const ended = plansOf(root, principal).filter((p) => !['pending', 'approved', 'running'].includes(planState(p, now)));
  for (const p of ended.slice(0, Math.max(0, ended.length - KEPT_ENDED))) {
    try {
      unlinkSync(join(principalDir(root, principal), `${p.id}.json`));
    } catch {
      // gone already
    }
  }
}
