/**
 * Races (SPEC §4.5, §4.9, §4.18): a qube is held at every step of its
 * creation (create, clone, disposable: the pipeline's awaitable `fault`
 * seam) and at sampled Admin API calls of its entombing (a qubesd proxy
 * that holds a call), and meanwhile the principal, through the qrexec
 * router of a full simulated host, tries to read it, start it, run a
 * command in it, write a file into it, ask its power state and clone it.
 * Until the qube is complete each attempt gets the uniform refusal, exactly
 * what the same call naming an absent qube gets, and the list does not name
 * it; once complete, it is seen. From the moment an entombing qube carries
 * its tombstone marker, it is treated as absent; a remove that answers
 * success leaves a halted, hidden tombstone, even when a start decided
 * before the remove lands after it (its lifecycle call held at a seeded
 * point of the entombing). A tombstone being restored is absent until the
 * restore is done, held at each of its Admin API calls. With the gate on,
 * a call whose qube is lowered or hidden while it waits for the operator is
 * refused after the approval (gate.ts).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Qubesd } from '../../src/dom0/qubesd.js';
import { readWriteSettings } from '../../src/dom0/create/settings.js';
import { openAudit } from '../../src/dom0/audit/index.js';
import { restoreTombstone } from '../../src/dom0/tombstones/operator.js';
import { dom0Root, startSimHost } from '../../src/sim/host.js';
import type { SimHost } from '../../src/sim/host.js';
import { asExecutableReply, isDom0Service, qrexecCollect } from '../../src/sim/qrexec/index.js';
import type { Budget, Check, CheckReport, Failure } from '../check.js';
import { CREATE_OPS, agentSees } from '../faults/check.js';
import { startProxy } from '../faults/proxy.js';
import type { Verdict } from '../faults/proxy.js';
import { BASE_SETTINGS, InProcessHost, PRINCIPAL, TAGS, attackFleet, prng, show } from '../malformed/host.js';
import type { CallResult, ServiceSut } from '../malformed/host.js';
import { qrexecService } from '../qrexec-service.js';
import { GATE_TARGET, raceTheGate } from './gate.js';
import { acquireBudgetLock } from '../../src/dom0/create/lock.js';

const NAME = 'races';
const TOMBSTONE = 'qmcp-tombstone-';

export interface RacesSut extends ServiceSut {
  /** Extra settings for the install (a weakened variant may, say, lift the birth ceiling). */
  readonly settings?: Record<string, unknown>;
  /** Also race entombing (default true); a test of a weakened create may skip it. */
  readonly entombing?: boolean;
  /** Only these create operations (default all). */
  readonly operations?: readonly string[];
  /** Also race the action gate (default true). */
  readonly gateRaces?: boolean;
}

/** The Admin API calls an entombing makes on its qube. */
const ENTOMB_METHODS = new Set(['admin.vm.CurrentState', 'admin.vm.property.Set', 'admin.vm.tag.Set', 'admin.vm.tag.Remove', 'admin.vm.tag.List', 'admin.vm.Shutdown', 'admin.vm.Kill', 'admin.vm.feature.Set', 'admin.vm.feature.List']);
/** The changes a restore makes on its qube. */
const RESTORE_METHODS = new Set(['admin.vm.tag.Set', 'admin.vm.tag.Remove', 'admin.vm.feature.Remove']);

interface Attempt {
  readonly what: string;
  /** A dom0 service call: made in this process through the runner on the host's dom0 root (its own code path, without a process start). */
  readonly dom0?: true;
  readonly target: (name: string) => string;
  readonly service: (name: string) => string;
  readonly payload: string;
}

/** A running exec-tier qube copies are made from and into. */
const COPIER = 'ai-execbox';
const COPY_REQUEST = `qmcp 1\npath ${Buffer.from('/etc/hostname').toString('base64')}\n\n`;

/** What the principal tries against a qube it should not yet (or no longer) see. */
const ATTEMPTS: readonly Attempt[] = [
  { what: 'read info', dom0: true, target: () => '@adminvm', service: (n) => qrexecService('info', n), payload: '' },
  { what: 'start', dom0: true, target: () => '@adminvm', service: (n) => qrexecService('start', n), payload: '' },
  { what: 'exec', target: (n) => n, service: () => qrexecService('run'), payload: 'id\n' },
  { what: 'write a file', target: (n) => n, service: () => qrexecService('file.write'), payload: 'data' },
  { what: 'copy into', target: () => COPIER, service: (n) => qrexecService('copy', n), payload: COPY_REQUEST },
  { what: 'copy out of', target: (n) => n, service: () => qrexecService('copy', COPIER), payload: COPY_REQUEST },
  { what: 'power state', target: (n) => n, service: () => qrexecService('state'), payload: '' },
  { what: 'clone it', dom0: true, target: () => '@adminvm', service: (n) => qrexecService('clone', n), payload: JSON.stringify({ name: 'ai-thief' }) },
];

/** A hold on one proxied call until released. */
function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((resolve) => (open = resolve));
  return { wait, open };
}

/**
 * One qrexec call through the host's router, from `seat` (the principal by default), as the
 * per-call executable would answer it: a dom0 service served by the resident process carries
 * its status in its reply's trailer, which is read as the exit status.
 */
export async function routerCall(host: SimHost, target: string, service: string, payload: string | Buffer, seat = PRINCIPAL): Promise<CallResult> {
  const raw = await qrexecCollect(host.router.socketFor(seat), target, service, payload);
  const r = host.resident !== null && isDom0Service(target, service) ? asExecutableReply(raw) : raw;
  return { status: r.status, stdout: r.stdout.toString('latin1'), stderr: r.stderr.toString('latin1') };
}

export function makeRacesCheck(sut: RacesSut = {}): Check {
  return {
    name: NAME,
    summary: 'start, exec, copy into, read and clone a qube while it is created, cloned, made disposable or entombed',
    async run(budget: Budget, seed: number): Promise<CheckReport> {
      const scale = Math.max(1, budget.scale);
      const rand = prng(seed);
      const failures: Failure[] = [];
      const reported = new Map<string, number>();
      const fail = (what: string, how: string): void => {
        // A few of each kind: one broken hold fails every attempt at it.
        const kind = `${what.split(' ')[0] ?? ''} ${what.includes('while entombed') ? 'entombing' : what.split(' held at ')[1]?.split(' ')[0] ?? ''}`;
        const n = (reported.get(kind) ?? 0) + 1;
        reported.set(kind, n);
        if (n <= 2) failures.push({ check: NAME, what, reproduction: `--seed ${seed} --scale ${scale} --only ${NAME}; ${how}` });
      };
      const targets = Array.from({ length: scale + 1 }, (_, i) => `ai-e${i}`);
      const fleet = attackFleet([...targets, GATE_TARGET].map((name) => ({ name, klass: 'AppVM' as const, template: 'ai-tpl', label: 'blue', tags: [TAGS.umbrella, TAGS.full], properties: { netvm: null } })));
      const dir = await mkdtemp(join(tmpdir(), 'qmcp-races-'));
      const settingsFile = join(dir, 'settings.json');
      await writeFile(settingsFile, JSON.stringify({ principal: PRINCIPAL, tags: TAGS, ...BASE_SETTINGS, ...sut.settings }));
      const host = await startSimHost({ dir: join(dir, 'host'), fleet, install: true, settingsFile, askTimeoutMs: 50 });
      const h = InProcessHost.attach(dom0Root(host.dir), host.qubesd, sut);
      const proxy = await startProxy(host.qubesd.socketPath, join(dir, 'proxy.sock'));
      const lateProxy = await startProxy(host.qubesd.socketPath, join(dir, 'late.sock'));
      let attempts = 0;
      let holds = 0;
      let serial = 0;
      const racingStarts = { won: 0 };
      let gateRaced = { rounds: 0, refusedAfterApproval: 0 };
      try {
        // What each attempt gets for a name that exists nowhere: the answer a hidden qube must give.
        const absent = 'ai-nowhere';
        const baseline = new Map<string, CallResult>();
        const attempt = (a: Attempt, name: string): Promise<CallResult> =>
          a.dom0 ? h.call(a.service(name), a.payload) : routerCall(host, a.target(name), a.service(name), a.payload);
        const copier = await routerCall(host, '@adminvm', qrexecService('start', COPIER), '');
        if (copier.status !== 0) throw new Error(`the copy source did not start: ${show(copier)}`);
        for (const a of ATTEMPTS) baseline.set(a.what, await attempt(a, absent));

        /** Every attempt against `name` must be answered as for an absent qube. */
        const asAbsent = async (name: string, where: string): Promise<void> => {
          holds++;
          // One at a time, so that no attempt is refused for want of a free call slot.
          const replies: CallResult[] = [];
          for (const a of ATTEMPTS) replies.push(await attempt(a, name));
          ATTEMPTS.forEach((a, i) => {
            attempts++;
            const r = replies[i] as CallResult;
            const want = baseline.get(a.what) as CallResult;
            if (r.status !== want.status || r.stdout !== want.stdout || r.stderr !== want.stderr) {
              fail(`${a.what} of ${name} ${where}: answered ${show(r).slice(0, 200)}, but for an absent qube ${show(want)}`, `${a.service(name)} to ${a.target(name)}`);
            }
          });
          attempts++;
          const list = await h.call(qrexecService('list'));
          if (list.stdout.includes(`"${name}"`)) fail(`the list names ${name} ${where}`, qrexecService('list'));
        };

        for (const op of CREATE_OPS.filter((o) => !sut.operations || sut.operations.includes(o.op))) {
          for (let round = 0; round < scale; round++) {
            const name = `ai-race${++serial}`;
            const steps: string[] = [];
            const r = await h.call(op.full, op.payload(name), {
              fault: async (step) => {
                steps.push(step);
                await asAbsent(name, `held at ${op.op} step ${step}`);
              },
            });
            if (r.status !== 0) {
              fail(`${op.op} of ${name} failed under the race: ${show(r)}`, op.full);
              continue;
            }
            if (steps.length === 0) fail(`${op.op}: no step was held`, op.full);
            const info = await routerCall(host, '@adminvm', qrexecService('info', name), '');
            attempts++;
            if (info.status !== 0) fail(`${op.op}: ${name} is not seen once complete (${show(info)})`, op.full);
          }
        }

        // Entombing, held before sampled Admin API calls of the remove.
        const viaProxy = new Qubesd(proxy.socketPath);
        for (const [i, target] of (sut.entombing === false ? [] : targets).entries()) {
          proxy.calls.length = 0;
          // Every other target gets one racing start, at a seeded hold before its marker; the rest none,
          // so that their entombing runs on into the marked window.
          let startAt = i % 2 === 1 ? 1 + rand.int(4) : -1;
          let markedHolds = 0;
          // Held before the entombing's own calls on the target (not the dependency scan), and before
          // a seeded share of those.
          const holdEvery = 1 + rand.int(2);
          proxy.decide = async (c): Promise<Verdict> => {
            if (c.dest !== target || !ENTOMB_METHODS.has(c.method) || c.n % holdEvery !== 0) return 'forward';
            const vm = host.qubesd.app.vms.get(target);
            if (vm?.tags.some((t) => t.startsWith(TOMBSTONE))) {
              if (markedHolds++ >= scale) return 'forward';
              await asAbsent(target, `while entombed, before its ${c.method} (call ${c.n})`);
            } else {
              // Still visible: a start that wins the race must not survive into a tombstone.
              holds++;
              if (--startAt === 0) {
                attempts++;
                const s = await routerCall(host, '@adminvm', qrexecService('start', target), '');
                if (s.status === 0) racingStarts.won++;
              }
            }
            return 'forward';
          };
          // A start decided now, before the remove: its lifecycle call is held until the entombing has made
          // a seeded number of its calls on the target (past its last one: until the remove answered).
          // The first target's lands after the remove answered; the others' at a seeded call of the entombing.
          const lateAt = i === 0 ? Infinity : 1 + rand.int(16);
          const late = gate();
          const lifecycle = gate();
          lateProxy.decide = async (c): Promise<Verdict> => {
            if (c.method === 'admin.vm.Start' && c.dest === target) {
              lifecycle.open();
              await late.wait;
            }
            return 'forward';
          };
          const lateStart = h.call(qrexecService('start', target), '', { qubesd: new Qubesd(lateProxy.socketPath) });
          await Promise.race([lifecycle.wait, lateStart]);
          let entombCalls = 0;
          const decide = proxy.decide;
          proxy.decide = async (c): Promise<Verdict> => {
            if (c.dest === target && ENTOMB_METHODS.has(c.method) && ++entombCalls === lateAt) {
              // the late start lands, whole, just before this call of the entombing
              late.open();
              await lateStart;
            }
            return decide(c);
          };
          const r = await h.call(qrexecService('remove', target), '', { qubesd: viaProxy });
          proxy.decide = () => 'forward';
          late.open();
          attempts++;
          await lateStart;
          lateProxy.decide = () => 'forward';
          const vm = host.qubesd.app.vms.get(target);
          if (r.status === 0 && (!vm || agentSees(vm) || vm.power !== 'Halted' || !vm.tags.some((t) => t.startsWith(TOMBSTONE)))) {
            fail(`remove of ${target} answered success but left ${vm ? `${vm.power} ${JSON.stringify(vm.tags)}` : 'nothing'} (a start decided before it landed at its call ${lateAt})`, `hold every ${holdEvery}, late start at entombing call ${lateAt}`);
          }
          if (r.status !== 0) continue;

          // Restore, held before each of its Admin API calls on the target: absent until it is done.
          let restoreCalls = 0;
          proxy.decide = async (c): Promise<Verdict> => {
            if (c.dest === target && RESTORE_METHODS.has(c.method)) {
              restoreCalls++;
              await asAbsent(target, `while restored, before its ${c.method} (call ${restoreCalls})`);
            }
            return 'forward';
          };
          const restoring = sut.qubesd ? sut.qubesd(viaProxy) : viaProxy;
          try {
            await restoreTombstone({ qubesd: restoring, settings: readWriteSettings(h.root, () => undefined), audit: openAudit({ root: h.root }), lock: () => acquireBudgetLock(h.root, 30_000) }, target);
          } catch (err) {
            fail(`restore of ${target} failed: ${(err as Error).message}`, 'restore');
          } finally {
            proxy.decide = () => 'forward';
          }
          attempts++;
          const seen = await routerCall(host, '@adminvm', qrexecService('info', target), '');
          if (seen.status !== 0) fail(`${target} is not seen once restored (${show(seen)})`, 'restore');
        }

        // last, as it installs settings with the gate on
        if (sut.gateRaces !== false) gateRaced = await raceTheGate(h, scale, { ...(sut.settings ? { settings: sut.settings } : {}), fail });
      } finally {
        await proxy.close();
        await lateProxy.close();
        await host.close();
        await rm(dir, { recursive: true, force: true });
      }
      return {
        figures: [
          { label: 'held moments', value: String(holds) },
          { label: 'racing attempts', value: String(attempts) },
          { label: 'racing starts before the tombstone marker', value: String(racingStarts.won) },
          { label: 'gate: calls whose qube was lowered or hidden while they waited', value: String(gateRaced.rounds) },
          { label: 'gate: of them refused after the approval', value: String(gateRaced.refusedAfterApproval) },
        ],
        failures,
      };
    },
  };
}

export const racesCheck = makeRacesCheck();
