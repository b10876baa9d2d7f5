/**
 * The approval channel is dom0's alone (docs/action-gate.md): a full
 * simulated host with the gate on and live requests waiting (and a live
 * dialog), attacked from the principal's seat and from sandbox qubes'
 * seats with every service name the policy or dom0 could answer, carrying
 * the live requests' ids, digests, nonces and forged answer documents, and
 * with reads and writes of the store from inside sandbox qubes. After every
 * call: the store is byte-identical, every live request still waits with
 * no answer, the dialog still waits, and the reply carries nothing of a
 * live request that the call did not carry itself. Then a second request
 * of the same exact call tries to ride on the first one's approval, and
 * every waiting call ends exactly as the operator answers it, and only so.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { openAudit, readTail, verifyAudit } from '../../src/dom0/audit/index.js';
import { approvePlan } from '../../src/dom0/plans/operator.js';
import { plansDir, plansOf, readPlan } from '../../src/dom0/plans/store.js';
import { decodePlanStatus } from '../../src/shared/plan-protocol.js';
import type { AuditEntry } from '../../src/dom0/audit/index.js';
import type { ApprovalRequest, Decision } from '../../src/dom0/gate/store.js';
import { approvalsDir, listRequests, writeAnswer } from '../../src/dom0/gate/store.js';
import { renderWrapper } from '../../src/dom0/install/wrapper.js';
import { Qubesd } from '../../src/dom0/qubesd.js';
import { OPERATIONS } from '../../src/shared/model/capabilities.js';
import { OPEN_GATE } from '../../src/sim/open-gate.js';
import { dom0Root, startSimHost } from '../../src/sim/host.js';
import type { SimHost } from '../../src/sim/host.js';
import { asExecutableReply, askControl, isDom0Service } from '../../src/sim/qrexec/index.js';
import type { ServiceMode } from '../../src/dom0/install/manifest.js';
import type { PendingAsk } from '../../src/sim/qrexec/index.js';
import type { Budget, Check, CheckReport, Failure } from '../check.js';
import { hangBoundMs } from '../hang-bound.js';
import { BASE_SETTINGS, PRINCIPAL, TAGS, attackFleet, isRefused, show } from '../malformed/host.js';
import type { CallResult } from '../malformed/host.js';
import { qrexecService } from '../qrexec-service.js';
import { routerCall } from '../races/check.js';
import type { Attack } from './attacks.js';
import { forgedAnswer, inQubeAttacks, serviceAttacks, serviceNames } from './attacks.js';

const NAME = 'approval-channel';
/** Who answers as the operator, in dom0. */
const OPERATOR = 'operator';
/** Sandbox qubes the attacks come from (running: code the agent runs there). */
const SEATS = ['ai-box', 'ai-execbox'] as const;
const MAX_FAILURES = 10;
/** The simulator's dialog waits as long as the check runs: only the operator answers it. */
const DIALOG_WAITS_MS = hangBoundMs(24 * 60 * 60_000);
/** A live request this close to its deadline is renewed before the next attack. */
const RENEW_MARGIN_MS = 90_000;

export interface ApprovalChannelSut {
  /**
   * A dom0 service that exposes the store (the weakened build): installed as
   * `service` (in place of a real one, or new with `policy`, a file read
   * before qmcp's own); `list` prints the requests, `answer` allows them all.
   */
  readonly exposing?: readonly { readonly service: string; readonly mode: 'list' | 'answer'; readonly policy?: string }[];
  /** How the host serves the dom0 services (default: as QMCP_DOM0_SERVICE_MODE says, else per call). */
  readonly serviceMode?: ServiceMode;
}

/** A call waiting for the operator, and how it ended once it has. */
interface Live {
  readonly what: string;
  readonly done: Promise<CallResult>;
  settled: boolean;
}

const EXPOSING_MAIN = join(dirname(fileURLToPath(import.meta.url)), 'exposing-main.js');

/** The calls that wait during the attacks: four requests (the cap, so no attack can add one) and a dialog. */
const WAITING = [
  { op: 'feature.set', qube: 'ai-box', payload: { name: 'gui', value: '0' } },
  { op: 'property.set', qube: 'ai-peer', payload: { name: 'memory', value: 1500 } },
  { op: 'remove', qube: 'ai-peer', payload: '' },
  { op: 'feature.set', qube: 'ai-peer', payload: { name: 'gui', value: '1' } },
] as const;

/** The plan that waits during the attacks; the operator approves it at the end, and it runs. */
const PLAN = { purpose: 'look at the box', steps: [{ operation: 'info', argument: 'ai-box', payload: '' }] };

const json = (p: unknown): string => (typeof p === 'string' ? p : JSON.stringify(p));

/** What READ gives, or null when the entry went between listing and reading it (the gate took a request: a normal race). */
function unlessGone<T>(read: () => T): T | null {
  try {
    return read();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/**
 * The files under the approval store and the plan store (but lock files),
 * each with its hash; a file gone before it is read is left out, as it
 * would be had it gone before the listing. BETWEEN runs after each listing,
 * before its entries are read.
 */
export function storeFiles(root: string, between: (dir: string) => void = () => undefined): string {
  const out: string[] = [];
  const walk = (dir: string): void => {
    const listed = unlessGone(() => readdirSync(dir, { withFileTypes: true }));
    if (listed === null) return;
    between(dir);
    for (const e of listed.sort((a, b) => a.name.localeCompare(b.name))) {
      const path = join(dir, e.name);
      if (e.isDirectory()) walk(path);
      else if (!e.name.endsWith('.lock')) {
        const bytes = unlessGone(() => readFileSync(path));
        if (bytes !== null) out.push(`${path} ${createHash('sha256').update(bytes).digest('hex')}`);
      }
    }
  };
  walk(approvalsDir(root));
  walk(plansDir(root));
  return out.join('\n');
}

/** Everything a reply says, raw and with every base64 run decoded (the in-qube replies carry text that way). */
function replyText(r: CallResult): string {
  const raw = `${r.stdout}\n${r.stderr}`;
  const decoded = [...raw.matchAll(/[A-Za-z0-9+/]{8,}={0,2}/g)].map((m) => Buffer.from(m[0], 'base64').toString('latin1'));
  return [raw, ...decoded].join('\n');
}

/** What a request holds that only the store (and its service) knows. */
function secretsOf(r: ApprovalRequest): string[] {
  return [r.id, r.nonce, r.digest, r.correlation];
}

async function bounded<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not end within its bound`)), hangBoundMs(60_000));
  });
  try {
    return await Promise.race([p, limit]);
  } finally {
    clearTimeout(timer);
  }
}

/** Waits (bounded, never timed) until `get` returns something. */
async function until<T>(get: () => Promise<T | null>, what: string): Promise<T> {
  const limit = Date.now() + hangBoundMs(60_000);
  for (;;) {
    const v = await get();
    if (v !== null) return v;
    if (Date.now() > limit) throw new Error(`never: ${what}`);
    await sleep(20);
  }
}

/** A call through the router; a resident dom0 service's reply read as the per-call executable's, which the judging below compares with. */
async function call(host: SimHost, seat: string, target: string, service: string, payload: string | Buffer): Promise<CallResult> {
  const r = await routerCall(host, target, service, payload, seat);
  if (host.resident === null || !isDom0Service(target, service)) return r;
  const e = asExecutableReply({ status: r.status, stdout: Buffer.from(r.stdout, 'latin1'), stderr: Buffer.from(r.stderr, 'latin1') });
  return { status: e.status, stdout: e.stdout.toString('latin1'), stderr: e.stderr.toString('latin1') };
}

function waitingCall(host: SimHost, what: string, service: string, target: string, payload: string): Live {
  const live: Live = { what, done: call(host, PRINCIPAL, target, service, payload), settled: false };
  void live.done.then(() => (live.settled = true), () => (live.settled = true));
  return live;
}

/** The dialogs waiting for the operator. */
async function dialogs(host: SimHost): Promise<PendingAsk[]> {
  const r = await askControl(host.router.askSocket, { op: 'list' });
  return r.ok ? (r.asks ?? []) : [];
}

/** The uniform refusal, after any keepalive newlines the wait wrote. */
const refusedAfterWait = (r: CallResult): boolean => isRefused({ ...r, stdout: r.stdout.replace(/^\n+/, '') });

export function makeApprovalChannelCheck(sut: ApprovalChannelSut = {}): Check {
  return {
    name: NAME,
    summary: 'the principal and sandbox qubes attack the approval store while requests wait: every service name, forged answers, reads from inside qubes, a request riding on another’s approval',
    async run(budget: Budget, seed: number): Promise<CheckReport> {
      const scale = Math.max(1, budget.scale);
      const failures: Failure[] = [];
      const repro = `--seed ${seed} --scale ${scale} --only ${NAME}`;
      const fail = (what: string, how: string): void => {
        if (failures.length < MAX_FAILURES) failures.push({ check: NAME, what, reproduction: `${repro}; ${how}` });
      };
      const tally = { plans: 0, live: 0, renewed: 0, services: 0, principal: 0, seats: 0, inQube: 0, refusals: 0, others: 0, riding: 0 };
      // a short name: the host's dom0 sockets are under it, and a socket's path has room for about 100 bytes
      const dir = await mkdtemp(join(tmpdir(), 'qa-'));
      const settingsFile = join(dir, 'settings.json');
      // every operation of a dom0 service that can ask asks, and so does pause (a dialog); the cap is the four waiting requests
      const gate = { ...OPEN_GATE, pause: 'ask', ...Object.fromEntries(OPERATIONS.filter((op) => op.target === 'dom0-service' && op.gate !== null).map((op) => [op.id, 'ask'])) };
      await writeFile(settingsFile, JSON.stringify({ principal: PRINCIPAL, tags: TAGS, ...BASE_SETTINGS, gate, approvalPendingCap: WAITING.length, approvalDeadlineSeconds: 240 }));
      const host = await startSimHost({ dir: join(dir, 'host'), fleet: attackFleet(), install: true, settingsFile, askTimeoutMs: DIALOG_WAITS_MS, ...(sut.serviceMode ? { serviceMode: sut.serviceMode } : {}) });
      const root = dom0Root(host.dir);
      const store = approvalsDir(root);
      try {
        for (const e of sut.exposing ?? []) await installExposing(host, root, e);
        const dom0 = new Qubesd(host.qubesd.socketPath);
        for (const q of SEATS) await dom0.call('admin.vm.Start', q);

        const answer = async (r: ApprovalRequest | undefined, decision: Decision): Promise<void> => {
          if (!r) return;
          try {
            await writeAnswer(store, r.id, { decision, by: OPERATOR, how: 'cli' }, new Date());
          } catch (err) {
            fail(`the operator could not answer ${r.operation} of ${r.qubes.join(' ')}: ${(err as Error).message}`, 'the operator answering');
          }
        };
        /** WAITING's calls made anew, each waiting for the operator, with its request. */
        const openLive = async (): Promise<{ live: Live[]; byCall: ApprovalRequest[] }> => {
          const known = new Set((await listRequests(store, new Date())).map((x) => x.request.id));
          const live = WAITING.map((w) => waitingCall(host, `${w.op} of ${w.qube}`, qrexecService(w.op, w.qube), '@adminvm', json(w.payload)));
          const byCall = await until(async () => {
            const fresh = (await listRequests(store, new Date())).filter((x) => x.state === 'pending' && !known.has(x.request.id)).map((x) => x.request);
            const mine = WAITING.map((w) => fresh.find((r) => r.operation === w.op && r.qubes[0] === w.qube && r.payload === Buffer.from(json(w.payload)).toString('base64')));
            return mine.every((r) => r !== undefined) ? (mine as ApprovalRequest[]) : null;
          }, 'the live requests waiting');
          tally.live += byCall.length;
          return { live, byCall };
        };
        /**
         * On a machine slow enough that a live request would lapse during the
         * attacks, the operator denies them all (each ends as the refusal) and
         * the calls are made again.
         */
        const renew = async (current: { live: Live[]; byCall: ApprovalRequest[] }): Promise<{ live: Live[]; byCall: ApprovalRequest[] }> => {
          for (const r of current.byCall) await answer(r, 'deny');
          for (const l of current.live) {
            const end = await bounded(l.done, l.what);
            if (!refusedAfterWait(end)) fail(`${l.what}, which the operator denied, ended ${show(end)}`, 'renewing the live requests');
          }
          tally.renewed++;
          return openLive();
        };
        const expiring = (rs: readonly ApprovalRequest[], marginMs: number): boolean => rs.some((r) => Date.parse(r.expires) - Date.now() < marginMs);

        // the live requests, the live dialog and a live plan
        let current = await openLive();
        const submitted = await call(host, PRINCIPAL, '@adminvm', qrexecService('plan.submit'), JSON.stringify(PLAN));
        const plan = plansOf(root, PRINCIPAL)[0];
        if (submitted.status !== 0 || plan === undefined) throw new Error(`the plan was not submitted: ${show(submitted)}`);
        const dialog = waitingCall(host, 'pause of ai-box', qrexecService('pause'), 'ai-box', '');
        await until(async () => ((await dialogs(host)).length === 1 ? true : null), 'the live dialog waiting');

        /** One attack, and everything that must still hold after it. */
        const attack = async (a: Attack, waiting: readonly ApprovalRequest[], baseline: string): Promise<void> => {
          const how = `${a.service} from ${a.seat} to ${a.target}, payload ${JSON.stringify(a.payload.toString('latin1').slice(0, 200))}`;
          let r: CallResult;
          try {
            r = await bounded(call(host, a.seat, a.target, a.service, a.payload), 'the call');
          } catch (err) {
            fail(`${a.service} from ${a.seat}: ${(err as Error).message}`, how);
            return;
          }
          if (a.seat === PRINCIPAL && !a.inQube) tally.principal++;
          if (a.seat !== PRINCIPAL) tally.seats++;
          if (a.inQube) tally.inQube++;
          if (isRefused(r)) tally.refusals++;
          else tally.others++;
          const text = replyText(r);
          const leaked = [...waiting.flatMap(secretsOf), plan.correlation].filter((s) => text.includes(s) && !a.carried.includes(s));
          if (leaked.length > 0) fail(`${a.service} from ${a.seat} answered with what only the store holds (${leaked.join(', ')}): ${show(r).slice(0, 300)}`, how);
          if (storeFiles(root) !== baseline) fail(`the approval store changed after ${a.service} from ${a.seat}`, how);
          if (readPlan(root, PRINCIPAL, plan.id)?.state !== 'pending') fail(`after ${a.service} from ${a.seat}, the live plan no longer waits`, how);
          const states = new Map((await listRequests(store, new Date())).map((x) => [x.request.id, x.state]));
          const moved = waiting.filter((w) => states.get(w.id) !== 'pending');
          if (moved.length > 0) fail(`after ${a.service} from ${a.seat}, live requests no longer simply wait: ${moved.map((w) => `${w.operation} ${states.get(w.id) ?? 'gone'}`).join(', ')}`, how);
          if (!dialog.settled && (await dialogs(host)).length !== 1) fail(`after ${a.service} from ${a.seat}, the live dialog no longer waits`, how);
          if (a.carried === 'echo alive' && !(r.status === 0 && text.includes('alive'))) fail(`the sandbox does not run commands (${show(r)}): its reads of the store would prove nothing`, how);
        };

        const services = serviceNames(root);
        tally.services = services.length;
        const attacksOn = (rs: readonly ApprovalRequest[]): Attack[] => [...serviceAttacks(services, rs, SEATS, scale), ...inQubeAttacks(SEATS, rs, { store, root, host: host.dir })];
        let attacks = attacksOn(current.byCall);
        let before = storeFiles(root);
        for (let i = 0; i < attacks.length; i++) {
          if (failures.length >= MAX_FAILURES) break;
          if (expiring(current.byCall, RENEW_MARGIN_MS)) {
            current = await renew(current);
            attacks = attacksOn(current.byCall);
            before = storeFiles(root);
          }
          await attack(attacks[i] as Attack, current.byCall, before);
        }
        // what follows assumes the live calls still wait
        if (failures.length > 0) return report();
        if (expiring(current.byCall, 2 * RENEW_MARGIN_MS)) current = await renew(current);

        // a second request of the exact call the operator allows, and another call, both waiting meanwhile: neither rides on the approval
        const { live, byCall } = current;
        const [l1, l2, l3, l4] = byCall;
        await answer(l2, 'deny');
        await answer(l4, 'deny');
        const ends = new Map<Live, CallResult>();
        for (const l of [live[1], live[3]] as Live[]) ends.set(l, await bounded(l.done, l.what));
        const same = waitingCall(host, 'feature.set of ai-box again', qrexecService('feature.set', 'ai-box'), '@adminvm', json(WAITING[0].payload));
        const other = waitingCall(host, 'feature.set of ai-box to 1', qrexecService('feature.set', 'ai-box'), '@adminvm', JSON.stringify({ name: 'gui', value: '1' }));
        const [r5, r6] = await until(async () => {
          const fresh = (await listRequests(store, new Date())).filter((x) => x.state === 'pending' && !byCall.some((r) => r.id === x.request.id)).map((x) => x.request);
          return fresh.length === 2 ? [fresh.find((r) => r.payload === l1?.payload), fresh.find((r) => r.payload !== l1?.payload)] : null;
        }, 'the riding requests waiting');
        if (!r5 || !r6 || r5.digest !== l1?.digest) fail('the second request of the same call is not bound to the same digest: the ride proves nothing', 'the riding requests');
        await answer(l1, 'allow');
        ends.set(live[0] as Live, await bounded((live[0] as Live).done, 'the allowed call'));
        const first = host.qubesd.app.vms.get('ai-box')?.features['gui'];
        const riding = [r5, r6].filter((r): r is ApprovalRequest => r !== undefined);
        const states = new Map((await listRequests(store, new Date())).map((x) => [x.request.id, x.state]));
        for (const r of riding) {
          if (states.get(r.id) === 'pending' && !same.settled && !other.settled) tally.riding++;
          else fail(`${r.operation} waiting beside an allowed request of ${riding[0] === r ? 'the same exact call' : 'the same qube'} did not simply wait: ${states.get(r.id) ?? 'gone'}`, 'the riding requests');
        }
        // the allowed answer replayed to the riding request, through every service the principal could call
        const waiting = [...riding, ...(l3 ? [l3] : [])];
        tally.live += riding.length;
        const replayed = r5 && l1 ? forgedAnswer({ ...l1, id: r5.id }) : '';
        const replays: Attack[] = services
          .filter((s) => s.startsWith('qmcp.'))
          .map((s) => ({ seat: PRINCIPAL, target: '@adminvm', service: `${s}+${r5?.id ?? ''}`, payload: Buffer.from(replayed), carried: `${s}+${r5?.id ?? ''} ${replayed}`, inQube: false }));
        const then = storeFiles(root);
        for (const a of replays) {
          if (failures.length > 0) return report();
          await attack(a, waiting, then);
        }
        await answer(r5, 'deny');
        await answer(r6, 'allow');
        await answer(l3, 'deny');
        ends.set(same, await bounded(same.done, same.what));
        ends.set(other, await bounded(other.done, other.what));
        ends.set(live[2] as Live, await bounded((live[2] as Live).done, (live[2] as Live).what));
        const pause = (await dialogs(host))[0];
        if (pause) await askControl(host.router.askSocket, { op: 'deny', id: pause.id });
        ends.set(dialog, await bounded(dialog.done, dialog.what));

        // each call ended as the operator answered it, and only so
        const vm = (q: string): ReturnType<typeof host.qubesd.app.vms.get> => host.qubesd.app.vms.get(q);
        const expect = (l: Live, allowed: boolean, holds: boolean, what: string): void => {
          const r = ends.get(l);
          const ok = r !== undefined && (allowed ? r.status === 0 && !/^\n*$/.test(r.stdout) : refusedAfterWait(r)) && holds;
          if (!ok) fail(`${l.what}, which the operator ${allowed ? 'allowed' : 'denied'}, ended ${r ? show(r).slice(0, 200) : 'never'} (${what})`, 'the operator answering');
        };
        expect(live[0] as Live, true, first === '0', 'gui set to 0 first');
        expect(live[1] as Live, false, vm('ai-peer')?.props['memory'] !== 1500, 'memory unchanged');
        expect(live[2] as Live, false, vm('ai-peer')?.tags.includes(TAGS.umbrella) === true, 'ai-peer kept');
        expect(live[3] as Live, false, vm('ai-peer')?.features['gui'] !== '1', 'ai-peer gui unchanged');
        expect(same, false, true, 'the same call, denied');
        expect(other, true, vm('ai-box')?.features['gui'] === '1', 'gui set to 1 last');
        const paused = ends.get(dialog);
        if (!paused || !isRefused(paused) || vm('ai-box')?.power !== 'Running') fail(`the pause the operator denied in the dialog ended ${paused ? show(paused) : 'never'}, ai-box ${vm('ai-box')?.power ?? 'gone'}`, 'the operator answering');

        // the plan waited through it all; the operator approves it now, and the principal sees it done
        await approvePlan({ root, qubesd: dom0, audit: openAudit({ root }), log: () => undefined, now: () => new Date(), operator: OPERATOR }, `${PRINCIPAL}/${plan.id}`);
        const status = await call(host, PRINCIPAL, '@adminvm', qrexecService('plan.status', plan.id), '');
        const state = status.status === 0 ? decodePlanStatus(JSON.parse(status.stdout) as unknown)?.state : undefined;
        if (state !== 'done') fail(`the plan the operator approved did not run to its end: ${show(status).slice(0, 300)}`, 'the plan');
        tally.plans++;

        const answers = (await readTail(root, 10_000)).map((l) => l.entry).filter((e): e is AuditEntry => e !== null && e.kind === 'answer');
        const foreign = answers.filter((e) => !new RegExp(`^(allow|deny) by ${OPERATOR} via cli$`).test(e.detail ?? ''));
        if (foreign.length > 0 || answers.length !== tally.live) fail(`the audit log's answers are not the operator's ${tally.live}: ${JSON.stringify(answers.map((e) => e.detail))}`, 'the audit log');
        if (!(await verifyAudit({ root })).valid) fail('the audit chain does not verify', 'the audit log');
      } catch (err) {
        fail(`the check could not go on: ${(err as Error).message}`, 'setup');
      } finally {
        await host.close();
        await rm(dir, { recursive: true, force: true });
      }
      return report();

      function report(): CheckReport {
        return {
        figures: [
          { label: 'live requests', value: String(tally.live) },
          { label: 'live requests renewed before their deadline (a slow machine)', value: String(tally.renewed) },
          { label: 'live dialogs', value: '1' },
          { label: 'live plans (approved by the operator at the end, and run)', value: String(tally.plans) },
          { label: 'service names tried', value: String(tally.services) },
          { label: 'calls from the principal', value: String(tally.principal) },
          { label: 'calls from sandbox qubes', value: String(tally.seats) },
          { label: 'reads and writes of the store from inside sandbox qubes', value: String(tally.inQube) },
          { label: 'answered with the uniform refusal', value: String(tally.refusals) },
          { label: 'answered otherwise, with nothing of a live request', value: String(tally.others) },
          { label: 'requests that did not ride on another’s approval', value: String(tally.riding) },
        ],
        failures,
        };
      }
    },
  };
}

/** Installs the weakened build's exposing service into the machine's dom0. */
async function installExposing(host: SimHost, root: string, e: NonNullable<ApprovalChannelSut['exposing']>[number]): Promise<void> {
  const wrapper = renderWrapper({ root, qubesdSocket: host.qubesd.socketPath, node: process.execPath, entry: EXPOSING_MAIN });
  // in place of the real service's executable, or of its socket when the resident process serves it
  await rm(join(root, 'etc', 'qubes-rpc', e.service), { force: true });
  await writeFile(join(root, 'etc', 'qubes-rpc', e.service), wrapper.replace('export QMCP_ROOT', `export QMCP_EXPOSE=${e.mode}\nexport QMCP_ROOT`), { mode: 0o755 });
  if (e.policy !== undefined) {
    await mkdir(join(root, 'etc', 'qubes', 'policy.d'), { recursive: true });
    await writeFile(join(root, 'etc', 'qubes', 'policy.d', `10-exposing-${e.service.toLowerCase().replace(/[^a-z0-9]/g, "-")}.policy`), e.policy);
  }
}

export const approvalChannelCheck = makeApprovalChannelCheck();
