/**
 * The approval store: `var/lib/qmcp/approvals/` under the dom0 root, mode
 * 0700, dom0's alone (docs/action-gate.md). A request is `ID.json`, made by
 * the service that waits on it; an answer is `ID.answer.json`, made by the
 * operator's CLI. Both are written whole to a temporary name and linked into
 * place, so a reader never sees half a file and a second answer finds the
 * first. The waiting service takes an answer by renaming it to
 * `ID.taken.json`; the CLI retracts one by unlinking it; exactly one of the
 * two succeeds, so the CLI reports what the service will do.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { link, mkdir, readFile, readdir, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { QmcpError } from '../../shared/errors.js';
import { acquireLock } from '../lockfile.js';
import type { HeldLock } from '../lockfile.js';

export const APPROVALS_DIR = join('var', 'lib', 'qmcp', 'approvals');

export function approvalsDir(root: string): string {
  return join(root, APPROVALS_DIR);
}

/** A call waiting for the operator, as its service recorded it. */
export interface ApprovalRequest {
  /** Short and typable: 8 characters of [a-z0-9]. */
  readonly id: string;
  /** Random, named by the answer, so an answer made for another request never fits. */
  readonly nonce: string;
  readonly principal: string;
  readonly operation: string;
  readonly argument: string;
  /** The exact payload, base64. */
  readonly payload: string;
  /** The qubes the call names (as its audit entries do). */
  readonly qubes: readonly string[];
  readonly digest: string;
  readonly correlation: string;
  /** ISO 8601. */
  readonly created: string;
  readonly expires: string;
  /** The waiting service: its pid and its start time (/proc), so a reused pid is not taken for it. */
  readonly pid: number;
  readonly startTime: string;
}

export type Decision = 'allow' | 'deny';
export type AnsweredHow = 'cli' | 'watch';

export interface ApprovalAnswer {
  readonly id: string;
  readonly nonce: string;
  readonly digest: string;
  readonly decision: Decision;
  /** The operator's user name. */
  readonly by: string;
  readonly how: AnsweredHow;
  readonly at: string;
}

/** pending: waiting; answered: an answer waits to be taken; stale: its service is gone; expired: past its deadline. */
export type RequestState = 'pending' | 'answered' | 'stale' | 'expired';

/** Why an answer was not recorded; the CLI says it and exits 1. */
export class AnswerRefused extends QmcpError {
  readonly code = 'ERR_QMCP_ANSWER_REFUSED';
  constructor(
    readonly reason: 'unknown' | 'stale' | 'expired' | 'answered' | 'rebound',
    /** Why, when the reason alone does not say it. */
    detail?: string,
  ) {
    super(
      {
        unknown: 'no such request (never made, or already ended)',
        stale: 'the service that made this request is gone; it can no longer be approved',
        expired: 'the request lapsed',
        answered: 'the request was already answered',
        rebound: 'the request was made under other settings; the service would refuse it after an approval',
      }[reason] + (detail ? `: ${detail}` : ''),
    );
  }
}

const ID = /^[a-z0-9]{8}$/;
const ID_CHARS = 'abcdefghijklmnopqrstuvwxyz0123456789';
const LOCK_WAIT_MS = 5_000;

function newId(): string {
  let id = '';
  while (id.length < 8) {
    for (const b of randomBytes(16)) if (b < 252 && id.length < 8) id += ID_CHARS[b % 36];
  }
  return id;
}

export function isRequestId(s: string): boolean {
  return ID.test(s);
}

const requestPath = (dir: string, id: string): string => join(dir, `${id}.json`);
const answerPath = (dir: string, id: string): string => join(dir, `${id}.answer.json`);
const takenPath = (dir: string, id: string): string => join(dir, `${id}.taken.json`);

function errno(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException).code;
}

async function unlinkIfPresent(path: string): Promise<boolean> {
  try {
    await unlink(path);
    return true;
  } catch (err) {
    if (errno(err) === 'ENOENT') return false;
    throw err;
  }
}

/** Writes `text` to `path` only if nothing is there: whole, then linked. False when taken. */
async function createWhole(dir: string, path: string, text: string): Promise<boolean> {
  const tmp = join(dir, `.tmp-${process.pid}-${randomBytes(8).toString('hex')}`);
  await writeFile(tmp, text, { mode: 0o600, flush: true });
  try {
    await link(tmp, path);
    return true;
  } catch (err) {
    if (errno(err) === 'EEXIST') return false;
    throw err;
  } finally {
    await unlinkIfPresent(tmp);
  }
}

async function readJson(path: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as unknown;
  } catch (err) {
    if (errno(err) === 'ENOENT') return undefined;
    // a file that is not JSON is not ours: read as malformed
    return null;
  }
}

const isString = (v: unknown): v is string => typeof v === 'string';

function asRequest(v: unknown): ApprovalRequest | null {
  if (typeof v !== 'object' || v === null) return null;
  const o = v as Record<string, unknown>;
  const strings = ['id', 'nonce', 'principal', 'operation', 'argument', 'payload', 'digest', 'correlation', 'created', 'expires', 'startTime'];
  if (!strings.every((k) => isString(o[k]))) return null;
  if (!ID.test(o['id'] as string) || !Number.isSafeInteger(o['pid']) || !Array.isArray(o['qubes']) || !o['qubes'].every(isString)) return null;
  if (Number.isNaN(Date.parse(o['expires'] as string)) || Number.isNaN(Date.parse(o['created'] as string))) return null;
  return o as unknown as ApprovalRequest;
}

function asAnswer(v: unknown): ApprovalAnswer | null {
  if (typeof v !== 'object' || v === null) return null;
  const o = v as Record<string, unknown>;
  if (!['id', 'nonce', 'digest', 'by', 'at'].every((k) => isString(o[k]))) return null;
  if (o['decision'] !== 'allow' && o['decision'] !== 'deny') return null;
  if (o['how'] !== 'cli' && o['how'] !== 'watch') return null;
  return o as unknown as ApprovalAnswer;
}

/**
 * A process's start time in clock ticks since boot (field 22 of
 * /proc/PID/stat); null when it is not running (gone, or a zombie).
 */
export function processStartTime(pid: number): string | null {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // the name field is in parentheses and may hold spaces: count from the last ')'
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  if (fields[0] === 'Z' || fields[0] === 'X') return null;
  const start = fields[22 - 3];
  return start !== undefined && /^[0-9]+$/.test(start) ? start : null;
}

/** Whether the service that made the request is still the one running under its pid. */
export function requesterAlive(r: ApprovalRequest): boolean {
  return processStartTime(r.pid) === r.startTime;
}

/** What a service records; the store adds id, nonce, pid and start time. */
export type NewRequest = Omit<ApprovalRequest, 'id' | 'nonce' | 'pid' | 'startTime' | 'correlation'>;

export interface CreateOptions {
  /** How many of the principal's requests may wait at once. */
  readonly cap: number;
  /** Logs the audit request entry once the request has its place; resolves to its correlation. */
  readonly audit: (id: string) => Promise<string>;
  /** The lock over counting and recording; the real lock file by default. */
  readonly lock?: (path: string) => Promise<HeldLock>;
  /** Told of each request cleared because its service is gone (for its audit entry). */
  readonly onStale?: (request: ApprovalRequest) => Promise<void>;
  /** Called between the count and the record (a test's barrier). */
  readonly counted?: () => Promise<void>;
}

async function ensureDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
}

/**
 * Records a request of `fields.principal`, unless as many as the cap are
 * waiting already (then null). Counting and recording hold one lock per
 * principal, so two services under the cap cannot both add past it. Requests
 * whose service is gone are cleared first: they can never be approved.
 */
export async function createRequest(dir: string, fields: NewRequest, o: CreateOptions): Promise<ApprovalRequest | null> {
  const startTime = processStartTime(process.pid);
  if (startTime === null) throw new Error('cannot read this process\'s start time from /proc');
  await ensureDir(dir);
  const lock = await (o.lock ?? ((p: string) => acquireLock(p, LOCK_WAIT_MS)))(join(dir, `${fields.principal}.lock`));
  try {
    let waiting = 0;
    for (const { request, state } of await listRequests(dir, new Date(0))) {
      if (request.principal !== fields.principal) continue;
      if (state !== 'stale') waiting++;
      else {
        await clearStale(dir, request.id);
        await o.onStale?.(request);
      }
    }
    await o.counted?.();
    if (waiting >= o.cap) return null;
    for (;;) {
      const id = newId();
      const correlation = await o.audit(id);
      const request: ApprovalRequest = { ...fields, id, nonce: randomBytes(16).toString('hex'), correlation, pid: process.pid, startTime };
      if (await createWhole(dir, requestPath(dir, id), JSON.stringify(request))) return request;
    }
  } finally {
    await lock.release();
  }
}

/** Every request in the store with its state at `now`, oldest first; files that do not parse are left out. */
export async function listRequests(dir: string, now: Date): Promise<{ request: ApprovalRequest; state: RequestState }[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    if (errno(err) === 'ENOENT') return [];
    throw err;
  }
  const out: { request: ApprovalRequest; state: RequestState }[] = [];
  for (const name of names) {
    const m = /^([a-z0-9]{8})\.json$/.exec(name);
    if (!m) continue;
    const request = await readRequest(dir, m[1] as string);
    if (request) out.push({ request, state: await stateOf(dir, request, now) });
  }
  return out.sort((a, b) => a.request.created.localeCompare(b.request.created) || a.request.id.localeCompare(b.request.id));
}

async function stateOf(dir: string, r: ApprovalRequest, now: Date): Promise<RequestState> {
  if (!requesterAlive(r)) return 'stale';
  if (now.getTime() > Date.parse(r.expires)) return 'expired';
  return (await readJson(answerPath(dir, r.id))) === undefined ? 'pending' : 'answered';
}

export async function readRequest(dir: string, id: string): Promise<ApprovalRequest | null> {
  if (!ID.test(id)) return null;
  const r = asRequest(await readJson(requestPath(dir, id)));
  return r && r.id === id ? r : null;
}

/** Where writeAnswer lets a test's barrier hold it: after reading the request, and after linking the answer. */
export type AnswerPoint = 'read' | 'linked';

/**
 * The operator's answer to request `id`. Refused (AnswerRefused) when the
 * request is unknown, its service gone, its deadline past, or it has an
 * answer already. Resolves to the request once its service is sure to take
 * the answer. `at` is called at each AnswerPoint (a test's barrier).
 */
export async function writeAnswer(
  dir: string,
  id: string,
  answer: { decision: Decision; by: string; how: AnsweredHow },
  now: Date,
  at?: (point: AnswerPoint) => Promise<void>,
): Promise<ApprovalRequest> {
  const request = await readRequest(dir, id);
  if (!request) throw new AnswerRefused('unknown');
  if (!requesterAlive(request)) throw new AnswerRefused('stale');
  if (now.getTime() > Date.parse(request.expires)) throw new AnswerRefused('expired');
  const record: ApprovalAnswer = { id, nonce: request.nonce, digest: request.digest, ...answer, at: now.toISOString() };
  if ((await readJson(takenPath(dir, id))) !== undefined) throw new AnswerRefused('answered');
  await at?.('read');
  const text = JSON.stringify(record);
  if (!(await createWhole(dir, answerPath(dir, id), text))) throw new AnswerRefused('answered');
  await at?.('linked');
  // the service may already have taken ours (then it counts); another one taken first means ours never will
  const taken = await readJson(takenPath(dir, id));
  if (taken !== undefined && JSON.stringify(taken) !== text) {
    await unlinkIfPresent(answerPath(dir, id));
    throw new AnswerRefused('answered');
  }
  // The service may have ended the request meanwhile; if it has, take the answer back,
  // unless the service took it first (then it acts on it).
  if ((await readRequest(dir, id))?.nonce === request.nonce) return request;
  if (await unlinkIfPresent(answerPath(dir, id))) throw new AnswerRefused('expired');
  return request;
}

/**
 * Takes the answer to `id` for the waiting service: null when there is none
 * yet; otherwise it is its alone (renamed away), and `malformed` when the
 * file is not an answer.
 */
export async function takeAnswer(dir: string, id: string): Promise<ApprovalAnswer | 'malformed' | null> {
  try {
    await rename(answerPath(dir, id), takenPath(dir, id));
  } catch (err) {
    if (errno(err) === 'ENOENT') return null;
    throw err;
  }
  return asAnswer(await readJson(takenPath(dir, id))) ?? 'malformed';
}

/**
 * Ends a request for its own service: the request first, so no answer is
 * written after; then the answer if one came in meanwhile, taken as the
 * last word (the CLI that wrote it has been or will be told it counts).
 */
export async function endRequest(dir: string, id: string): Promise<ApprovalAnswer | 'malformed' | null> {
  await unlinkIfPresent(requestPath(dir, id));
  const late = await takeAnswer(dir, id);
  await unlinkIfPresent(takenPath(dir, id));
  return late;
}

/** Removes a request whose service is gone, and any answer to it. */
async function clearStale(dir: string, id: string): Promise<void> {
  await unlinkIfPresent(requestPath(dir, id));
  await unlinkIfPresent(answerPath(dir, id));
  await unlinkIfPresent(takenPath(dir, id));
}
