/**
 * The operator's side of the action gate (docs/action-gate.md): list the
 * requests waiting, show one in plain language from the live state, answer
 * it. The waiting service writes the audit entries; this only writes the
 * answer file.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Settings } from '../../shared/model/settings.js';
import { DEFAULT_SETTINGS, readPrincipalsFile, settingsPath } from '../../shared/model/index.js';
import { quote } from '../audit/escape.js';
import { settingsDigest } from '../../shared/model/hash.js';
import { describeCall } from '../gate/describe.js';
import { requestDigest } from '../gate/digest.js';
import { loadDom0Config } from '../service/config.js';
import type { AnsweredHow, ApprovalRequest, Decision, RequestState } from '../gate/store.js';
import { AnswerRefused, approvalsDir, isRequestId, listRequests, readRequest, requesterAlive, writeAnswer } from '../gate/store.js';
import type { Qubesd } from '../qubesd.js';

export { AnswerRefused };

export interface ApprovalOps {
  readonly root: string;
  readonly qubesd: Qubesd;
  readonly now: () => Date;
  /** Only this principal's requests: another's read as requests that do not exist. */
  readonly principal?: string;
}

/** The requests ops covers, with their state. */
async function requests(ops: ApprovalOps, now: Date): Promise<Awaited<ReturnType<typeof listRequests>>> {
  return (await listRequests(approvalsDir(ops.root), now)).filter(({ request }) => ops.principal === undefined || request.principal === ops.principal);
}

/** A request in ops' scope by its id; null when there is none. */
async function request(ops: ApprovalOps, id: string): Promise<ApprovalRequest | null> {
  if (!isRequestId(id)) return null;
  const r = await readRequest(approvalsDir(ops.root), id);
  return r !== null && (ops.principal === undefined || r.principal === ops.principal) ? r : null;
}

/** The installed settings of the principal that made a request, which its service read. */
function settingsOf(root: string, principal: string): Settings {
  const { list } = readPrincipalsFile(settingsPath(root)).principals;
  return list.find((s) => s.principal === principal) ?? list[0] ?? DEFAULT_SETTINGS;
}

export interface ApprovalRow {
  readonly id: string;
  readonly principal: string;
  readonly operation: string;
  readonly qubes: readonly string[];
  readonly ageSeconds: number;
  readonly lapses: string;
  readonly state: RequestState;
}

function seconds(ms: number): number {
  return Math.max(0, Math.round(ms / 1000));
}

export async function listApprovals(ops: ApprovalOps): Promise<ApprovalRow[]> {
  const now = ops.now();
  return (await requests(ops, now)).map(({ request: r, state }) => ({
    id: r.id,
    principal: r.principal,
    operation: r.operation,
    qubes: r.qubes,
    ageSeconds: seconds(now.getTime() - Date.parse(r.created)),
    lapses: r.expires,
    state,
  }));
}

/** One line per request: id, who, what, on which qubes, how old, when it lapses, and its state. */
export function formatRow(r: ApprovalRow): string {
  const qubes = r.qubes.length ? r.qubes.map(quote).join(',') : '-';
  return `${r.id}  ${quote(r.principal)}  ${r.operation}  ${qubes}  ${r.ageSeconds}s old  lapses ${r.lapses}  ${r.state}`;
}

/** The request as the operator reads it before answering; null when there is no such request. */
export async function showApproval(ops: ApprovalOps, id: string): Promise<string[] | null> {
  const r = await request(ops, id);
  return r ? describeRequest(ops, r) : null;
}

async function describeRequest(ops: ApprovalOps, r: ApprovalRequest): Promise<string[]> {
  const now = ops.now();
  const left = seconds(Date.parse(r.expires) - now.getTime());
  const status = !requesterAlive(r) ? 'STALE: the service that asked is gone; it cannot be approved' : left > 0 ? `lapses at ${r.expires} (in ${left} s)` : `lapsed at ${r.expires}`;
  const call = { principal: r.principal, operation: r.operation, argument: r.argument, payload: Buffer.from(r.payload, 'base64') };
  return [`request ${r.id}, asked at ${r.created}; ${status}`, ...(await describeCall(call, { qubesd: ops.qubesd, settings: settingsOf(ops.root, r.principal), now }))];
}

/**
 * Why the waiting service would refuse an approval of `r` after it is given
 * (its check 'rebound': the settings or the model are no longer those the
 * request was made under); null while they are.
 */
export function reboundReason(root: string, r: ApprovalRequest): string | null {
  const config = loadDom0Config(root, () => undefined, undefined, r.principal);
  if (config === null) return 'the settings are unusable or no longer match the installed policy (run qmcp dom0 doctor)';
  if (config.settings.principal !== r.principal) return 'the principal setting changed';
  const now = requestDigest({
    principal: r.principal,
    operation: r.operation,
    argument: r.argument,
    payload: Buffer.from(r.payload, 'base64'),
    settingsDigest: settingsDigest(config.settings),
    modelHash: config.settings.model ?? '',
  });
  return now === r.digest ? null : 'the settings or the model changed since the request was made';
}

/**
 * Records the operator's answer; throws AnswerRefused (unknown, stale,
 * expired, answered, and for an approval rebound: an approval the service
 * would refuse is never recorded, so the operator learns it now).
 */
export async function answerApproval(ops: ApprovalOps, id: string, decision: Decision, by: string, how: AnsweredHow): Promise<void> {
  if (!isRequestId(id)) throw new AnswerRefused('unknown');
  const dir = approvalsDir(ops.root);
  const r = await request(ops, id);
  if (r === null && ops.principal !== undefined) throw new AnswerRefused('unknown');
  if (decision === 'allow') {
    const why = r === null ? null : reboundReason(ops.root, r);
    if (why !== null) throw new AnswerRefused('rebound', `${why}; the request is worthless: deny it or let it lapse, and the agent must ask again`);
  }
  await writeAnswer(dir, id, { decision, by, how }, ops.now());
}

export interface WatchIo {
  /** Prints lines for the operator. */
  readonly print: (lines: readonly string[]) => void;
  /** Asks the question; true for yes, false for anything else, null when input ended. */
  readonly ask: (question: string) => Promise<boolean | null>;
  /** Aborted to stop watching (SIGINT). */
  readonly signal: AbortSignal;
  readonly by: string;
  /** Stop after one answer. */
  readonly once?: boolean;
  readonly pollMs?: number;
}

/**
 * Shows each new live request and asks `allow? [y/N]`, one at a time, until
 * input ends or the signal (resolves to the number of answers recorded).
 */
export async function watchApprovals(ops: ApprovalOps, io: WatchIo): Promise<number> {
  const asked = new Set<string>();
  let answers = 0;
  while (!io.signal.aborted) {
    const next = (await requests(ops, ops.now())).find(({ request, state }) => state === 'pending' && !asked.has(request.id));
    if (!next) {
      await sleep(io.pollMs ?? 300, undefined, { signal: io.signal }).catch(() => undefined);
      continue;
    }
    const r = next.request;
    asked.add(r.id);
    io.print(['', ...(await describeRequest(ops, r))]);
    const yes = await io.ask('allow? [y/N] ');
    if (yes === null) break;
    try {
      await answerApproval(ops, r.id, yes ? 'allow' : 'deny', io.by, 'watch');
      io.print([`${yes ? 'allowed' : 'denied'} ${r.id}`]);
      answers++;
    } catch (err) {
      if (!(err instanceof AnswerRefused)) throw err;
      io.print([`not recorded for ${r.id}: ${err.message}`]);
    }
    if (io.once) break;
  }
  return answers;
}
