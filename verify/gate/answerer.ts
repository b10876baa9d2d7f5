/**
 * An automatic operator for the checks that run with the action gate on. It
 * watches a simulated host's approval store (requests of the qmcp dom0
 * services) and its qrexec ask queue (the dialog of the calls the policy
 * decides alone) and answers each waiting call allow or deny; and, when
 * told to, answers the plans that wait (an approved plan runs then, as
 * `qmcp dom0 plans approve` runs it). The decision is a function of a seed
 * and what the caller asked, never of the request or plan id, the time or
 * anything outside the agent's world, so the two machines of a
 * noninterference pair answer the same call the same way.
 */
import { createHash } from 'node:crypto';
import type { Decision } from '../../src/dom0/gate/store.js';
import { AnswerRefused, approvalsDir, listRequests, writeAnswer } from '../../src/dom0/gate/store.js';
import { openAudit } from '../../src/dom0/audit/index.js';
import { approvePlan, denyPlan } from '../../src/dom0/plans/operator.js';
import { allPlans, planState } from '../../src/dom0/plans/store.js';
import { Qubesd } from '../../src/dom0/qubesd.js';
import { SINK_PUSH } from '../../src/shared/inqube-protocol.js';
import { askControl } from '../../src/sim/qrexec/asks.js';
import type { PendingAsk } from '../../src/sim/qrexec/asks.js';
import { hangBoundMs } from '../hang-bound.js';

/** A call waiting for the operator, as far as the answerer may look at it. */
export interface WaitingCall {
  readonly kind: 'request' | 'ask' | 'plan';
  /** The principal (request, plan) or the calling qube (ask). */
  readonly source: string;
  /** The operation id (request), the qrexec service (ask), or `plan`. */
  readonly what: string;
  /** The call's argument; a plan's purpose. */
  readonly argument: string;
  /** The payload, base64 (a request); a plan's steps as JSON; '' for an ask, whose dialog shows none. */
  readonly payload: string;
  /** The qubes a request or a plan's steps name; an ask's requested target. */
  readonly qubes: readonly string[];
}

export interface Answered extends WaitingCall {
  readonly decision: Decision;
  /** An ask allowed: the target chosen. */
  readonly target?: string;
}

/** Who the answers say answered. */
export const ANSWERER = 'verify-answerer';

export interface AnswererOptions {
  /** The simulated dom0 root: the store is under it. */
  readonly root: string;
  /** The router's ask control socket; without it asks are left alone. */
  readonly askSocket?: string;
  readonly seed: number;
  /** Share of the calls allowed (default one half). */
  readonly allowShare?: number;
  /** Decides in place of the seed (a race's barrier: it may wait). */
  readonly decide?: (call: WaitingCall) => Decision | Promise<Decision>;
  /** Between two looks at the store and the queue while a call is in flight (default 5 ms). */
  readonly pollMs?: number;
  /**
   * Between two looks while no call the check made (`during`) is in flight
   * (default pollMs): a call made otherwise waits up to this long.
   */
  readonly idleMs?: number;
  /** qubesd's socket, for the plans: an approved plan runs in this process, as the operator's command runs it. */
  readonly qubesdSocket?: string;
}

export interface Answerer {
  /** Every call answered, in the order answered. */
  readonly answered: readonly Answered[];
  /** What went wrong while answering (a check reports it). */
  readonly errors: readonly string[];
  /**
   * Answers every plan that waits now, and runs each one approved; a check
   * calls it between two calls, so a plan's state at the next call does
   * not depend on how fast the answerer was.
   */
  settlePlans(): Promise<void>;
  /** P, a call the check makes: the answerer looks every pollMs, from now until P settles. */
  during<T>(p: Promise<T>): Promise<T>;
  /** Stops after the look in flight (bounded); resolves when it has. */
  stop(): Promise<void>;
}

/**
 * The argument a decision is made on. A sink push's argument is the fresh
 * directory the copy chose (its clock and a random suffix), different on
 * two machines for the same call: the decision takes it as one word.
 */
export function decidingArgument(call: Pick<WaitingCall, 'kind' | 'what' | 'argument'>): string {
  if (call.kind === 'ask' && call.what === 'qmcp.SinkPush' && SINK_PUSH.test(call.argument)) return 'PUSH';
  return call.argument;
}

/** The seeded decision: a hash of the seed and the call, compared with the share. */
export function seededDecision(seed: number, call: WaitingCall, allowShare = 0.5): Decision {
  const h = createHash('sha256');
  for (const field of [String(seed), call.kind, call.source, call.what, decidingArgument(call), call.payload, ...call.qubes]) h.update(`${field.length}:${field}`);
  return h.digest().readUInt32BE(0) / 2 ** 32 < allowShare ? 'allow' : 'deny';
}

/**
 * The target an approved dialog gets: the qube the caller named when the
 * dialog offers it, dom0 when that is the only choice (an Admin API line
 * with target=dom0); otherwise none, and the dialog is denied.
 */
export function askTarget(ask: Pick<PendingAsk, 'target' | 'targets'>): string | null {
  if (ask.targets.includes(ask.target)) return ask.target;
  if (ask.targets.length === 1 && ask.targets[0] === 'dom0') return 'dom0';
  return null;
}

/** An idle look for a check whose own calls all go through `during`: what else asks (an MCP session's call) waits up to this. */
export const IDLE_MS = 50;

export function startAnswerer(o: AnswererOptions): Answerer {
  const dir = approvalsDir(o.root);
  const answered: Answered[] = [];
  const errors: string[] = [];
  const seen = new Set<string>();
  const stopping = new AbortController();
  // a barrier that never opens must not hold the stop
  const stopped = new Promise<Decision>((resolve) => stopping.signal.addEventListener('abort', () => resolve('deny'), { once: true }));
  const decide = async (call: WaitingCall): Promise<Decision> => {
    if (!o.decide) return seededDecision(o.seed, call, o.allowShare);
    return Promise.race([Promise.resolve(o.decide(call)), stopped]);
  };

  const requests = async (): Promise<void> => {
    for (const { request, state } of await listRequests(dir, new Date())) {
      if (state !== 'pending' || seen.has(`r${request.id}`)) continue;
      seen.add(`r${request.id}`);
      const call: WaitingCall = { kind: 'request', source: request.principal, what: request.operation, argument: request.argument, payload: request.payload, qubes: request.qubes };
      const decision = await decide(call);
      // recorded before the answer, so a call that returns finds its record
      answered.push({ ...call, decision });
      try {
        await writeAnswer(dir, request.id, { decision, by: ANSWERER, how: 'cli' }, new Date());
      } catch (err) {
        // withdrawn or lapsed meanwhile: nothing to answer
        if (!(err instanceof AnswerRefused)) throw err;
      }
    }
  };

  const asks = async (sock: string): Promise<void> => {
    const listed = await askControl(sock, { op: 'list' });
    if (!listed.ok) throw new Error(`ask list: ${listed.error}`);
    for (const ask of listed.asks ?? []) {
      if (seen.has(`a${ask.id}`)) continue;
      seen.add(`a${ask.id}`);
      const call: WaitingCall = { kind: 'ask', source: ask.source, what: ask.service, argument: ask.argument, payload: '', qubes: [ask.target] };
      const target = (await decide(call)) === 'allow' ? askTarget(ask) : null;
      answered.push({ ...call, decision: target === null ? 'deny' : 'allow', ...(target === null ? {} : { target }) });
      const reply = await askControl(sock, target === null ? { op: 'deny', id: ask.id } : { op: 'allow', id: ask.id, target });
      if (!reply.ok && !stopping.signal.aborted) errors.push(`ask ${ask.service} from ${ask.source}: ${reply.error}`);
    }
  };

  const settlePlans = async (): Promise<void> => {
    if (o.qubesdSocket === undefined) return;
    const deps = { root: o.root, qubesd: new Qubesd(o.qubesdSocket), audit: openAudit({ root: o.root }), log: () => undefined, now: () => new Date(), operator: ANSWERER };
    for (const plan of allPlans(o.root)) {
      const key = `p${plan.principal}/${plan.id}`;
      if (planState(plan, new Date()) !== 'pending' || seen.has(key)) continue;
      seen.add(key);
      const qubes = [...new Set(plan.steps.flatMap((s) => [s.qube ?? '', s.argument]).filter((q) => q !== ''))];
      const call: WaitingCall = { kind: 'plan', source: plan.principal, what: 'plan', argument: plan.purpose, payload: JSON.stringify(plan.steps), qubes };
      const decision = await decide(call);
      answered.push({ ...call, decision });
      try {
        if (decision === 'allow') await approvePlan(deps, `${plan.principal}/${plan.id}`);
        else await denyPlan(deps, `${plan.principal}/${plan.id}`);
      } catch (err) {
        errors.push(`plan ${plan.principal}/${plan.id}: ${(err as Error).message}`);
      }
    }
  };

  const pollMs = o.pollMs ?? 5;
  const idleMs = o.idleMs ?? pollMs;
  // the calls the check has in flight; a new one ends an idle wait at once
  let inFlight = 0;
  let wake = (): void => undefined;
  stopping.signal.addEventListener('abort', () => wake(), { once: true });
  const loop = (async (): Promise<void> => {
    while (!stopping.signal.aborted) {
      try {
        await requests();
        if (o.askSocket !== undefined) await asks(o.askSocket);
      } catch (err) {
        // the host going away under the last look is not an error; one line of each is enough
        const message = (err as Error).message;
        if (!stopping.signal.aborted && !errors.includes(message)) errors.push(message);
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => wake(), inFlight > 0 ? pollMs : idleMs);
        wake = (): void => {
          clearTimeout(timer);
          wake = () => undefined;
          resolve();
        };
        if (stopping.signal.aborted) wake();
      });
    }
  })();

  return {
    answered,
    errors,
    settlePlans,
    async during(p) {
      inFlight++;
      wake();
      try {
        return await p;
      } finally {
        inFlight--;
      }
    },
    async stop() {
      stopping.abort();
      let timer: NodeJS.Timeout | undefined;
      const bound = new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          errors.push('the answerer did not stop within its bound');
          resolve();
        }, hangBoundMs(30_000));
      });
      await Promise.race([loop, bound]);
      clearTimeout(timer);
    },
  };
}
