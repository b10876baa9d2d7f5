/**
 * Faults (SPEC §4.9, §4.11, §4.12): failures injected into create,
 * create.disptemplate, disposable, clone, remove and restore:
 *  - a throw at each step of the create pipeline (its `fault` seam);
 *  - qubesd failing the Nth Admin API call (a socket proxy), for sampled N;
 *  - the service process killed (SIGKILL) at a random moment;
 *  - an audit log on a full disk (the log a symlink to /dev/full).
 * Afterwards: no qube the agent sees before it is complete; a create that
 * failed in a running service left nothing, or the loud half-state
 * (`incomplete` and `qmcp-rollback-failed`); a killed one left nothing, a
 * complete qube, or a hidden one; any other qube changed only by being
 * marked incomplete (loud); a removed qube still exists and is visible or a
 * restorable tombstone; a restore can always be finished; and with the
 * audit intent unwritable, every state-changing call is refused and
 * nothing changes.
 */
import { existsSync, renameSync, rmSync, symlinkSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { auditLogPath, openAudit, verifyAudit } from '../../src/dom0/audit/index.js';
import { readWriteSettings } from '../../src/dom0/create/settings.js';
import { Qubesd } from '../../src/dom0/qubesd.js';
import { runDoctor } from '../../src/dom0/operator/doctor.js';
import { restoreTombstone } from '../../src/dom0/tombstones/operator.js';
import type { VmState } from '../../src/sim/qubesd/state.js';
import type { Budget, Check, CheckReport, Failure } from '../check.js';
import { INCOMPLETE, InProcessHost, PRINCIPAL, TAGS, attackFleet, isRefused, prng, show, spawnService, stableJson } from '../malformed/host.js';
import type { CallResult, ServiceSut } from '../malformed/host.js';
import { qrexecService } from '../qrexec-service.js';
import { startProxy } from './proxy.js';
import type { QubesdProxy } from './proxy.js';
import { acquireBudgetLock } from '../../src/dom0/create/lock.js';

const NAME = 'faults';
const ROLLBACK_FAILED = 'qmcp-rollback-failed';
const TOMBSTONE = 'qmcp-tombstone-';
const OLD_MARKER = `${TOMBSTONE}20261101T000000Z`;

interface CreateOp {
  readonly op: string;
  readonly full: string;
  readonly source: string;
  payload(name: string): string;
}

/** A create path of the model, called with `argument` (a qube, or none). */
function createOp(op: string, argument: string, source: string, payload: (name: string) => string): CreateOp {
  return { op, full: qrexecService(op, argument), source, payload };
}

export const CREATE_OPS: readonly CreateOp[] = [
  createOp('create', '', 'ai-tpl', (name) => JSON.stringify({ name, template: 'ai-tpl' })),
  createOp('create.disptemplate', '', 'ai-tpl', (name) => JSON.stringify({ name, template: 'ai-tpl' })),
  createOp('disposable', 'ai-dvm', 'ai-dvm', (name) => JSON.stringify({ name, autoCleanup: false })),
  createOp('clone', 'ai-box', 'ai-box', (name) => JSON.stringify({ name })),
];

/** What the agent would see of a qube, decided from the tags as SPEC §2 says. */
export function agentSees(vm: VmState | undefined): boolean {
  return !!vm && vm.klass !== 'AdminVM' && vm.tags.includes(TAGS.umbrella) && !vm.tags.includes(TAGS.sink) && !vm.tags.includes(INCOMPLETE);
}

function norm(vm: VmState): string {
  return stableJson({ ...vm, tags: [...vm.tags].sort() });
}

/** Every qube but `except`, canonically. */
function qubesNow(h: InProcessHost, except: string | null): Map<string, string> {
  const out = new Map<string, string>();
  for (const vm of h.sim.app.vms.values()) if (vm.name !== except) out.set(vm.name, norm(vm));
  return out;
}

/** Qubes that changed other than by being marked incomplete (the loud half-state). */
function quietlyChanged(h: InProcessHost, before: Map<string, string>): string[] {
  const out: string[] = [];
  for (const [name, was] of before) {
    const vm = h.sim.app.vms.get(name);
    if (!vm) {
      out.push(`${name} vanished`);
      continue;
    }
    if (norm(vm) !== was && !vm.tags.includes(INCOMPLETE)) out.push(`${name} changed`);
  }
  return out;
}

/** A created qube the agent sees is complete: the umbrella, never the hiding tag, never a tier above the birth ceiling. */
function completeIfSeen(vm: VmState | undefined): string | null {
  if (!vm || !agentSees(vm)) return null;
  if (vm.tags.includes(TAGS.full) || vm.tags.includes(TAGS.net)) return `${vm.name} is visible above the birth ceiling: ${JSON.stringify(vm.tags)}`;
  if (!vm.tags.includes(`qmcp-owner-${PRINCIPAL}`)) return `${vm.name} is visible without its owner tag: ${JSON.stringify(vm.tags)}`;
  return null;
}


/** Up to `k` distinct values of 1..n, seeded, always with the first and the last. */
function sample(rand: ReturnType<typeof prng>, n: number, k: number): number[] {
  const all = Array.from({ length: n }, (_, i) => i + 1);
  if (n <= k) return all;
  const middle = rand.shuffle(all.slice(1, -1)).slice(0, Math.max(0, k - 2));
  return [1, ...middle.sort((a, b) => a - b), n];
}

export interface FaultsSut extends ServiceSut {
  /** Run only these kinds of fault (a test of one weakened part); default all. */
  readonly kinds?: readonly ('steps' | 'qubesd' | 'kills' | 'disk')[];
}

export function makeFaultsCheck(sut: FaultsSut = {}): Check {
  return {
    name: NAME,
    summary: 'faults at every create step, failing qubesd calls, killed service processes, a full audit disk',
    async run(budget: Budget, seed: number): Promise<CheckReport> {
      const scale = Math.max(1, budget.scale);
      const rand = prng(seed);
      const failures: Failure[] = [];
      const counts = new Map<string, number>();
      const count = (label: string, n = 1): void => {
        counts.set(label, (counts.get(label) ?? 0) + n);
      };
      const fail = (what: string, how: string): void => {
        failures.push({ check: NAME, what, reproduction: `--seed ${seed} --scale ${scale} --only ${NAME}; ${how}` });
      };
      const perOp = 4 * scale;
      const targets = Array.from({ length: perOp + 3 }, (_, i) => `ai-r${i}`);
      const tombs = Array.from({ length: perOp + 2 }, (_, i) => `ai-t${i}`);
      const fleet = attackFleet([
        ...targets.map((name) => ({ name, klass: 'AppVM' as const, template: 'ai-tpl', label: 'blue', tags: [TAGS.umbrella, TAGS.full, 'ai-lock'], properties: { netvm: null, autostart: true } })),
        ...tombs.map((name) => ({ name, klass: 'AppVM' as const, template: 'ai-tpl', label: 'blue', tags: [OLD_MARKER, `qmcp-owner-${PRINCIPAL}`, TAGS.exec], properties: { netvm: null } })),
      ]);
      const h = await InProcessHost.start({ fleet, sut });
      const proxy: QubesdProxy = await startProxy(h.sim.socketPath, join(h.root, '..', 'proxy.sock'));
      const viaProxy = new Qubesd(proxy.socketPath);
      let serial = 0;
      const fresh = (): string => `ai-f${++serial}`;
      const settings = (): ReturnType<typeof readWriteSettings> => readWriteSettings(h.root, () => undefined);
      const audit = openAudit({ root: h.root });

      /** Whether `doctor` names the qube in a finding (a FAIL or a note), as the loud half-state must be. */
      const doctorNames = async (name: string): Promise<boolean> => {
        const report = await runDoctor({ root: h.root, qubesdSocket: h.sim.socketPath });
        const named = new RegExp(`(^|[\\s,:])${name.replace(/\./g, '\\.')}([\\s,:;]|$)`);
        return report.checks.some((c) => c.status !== 'ok' && named.test(c.message));
      };
      /** The operator's cleanup of a leftover once doctor has named it, so the next case starts clean. */
      const clear = async (name: string): Promise<void> => {
        try {
          if (h.sim.app.vms.get(name)?.power !== 'Halted') await h.qubesd.call('admin.vm.Kill', name);
        } catch {
          // halted already
        }
        await h.qubesd.call('admin.vm.Remove', name).catch(() => undefined);
        rmSync(join(h.root, 'var', 'lib', 'qmcp', 'rollback-failed', name), { force: true });
      };
      const leftovers: string[] = [];
      /** Every leftover of the last case must be named by doctor; then it is cleared. */
      const settle = async (): Promise<void> => {
        while (leftovers.length > 0) {
          const [label, name] = leftovers.splice(0, 2) as [string, string];
          count('leftovers doctor names');
          if (!(await doctorNames(name))) fail(`${label}: ${name} was left behind and doctor does not name it`, JSON.stringify(h.sim.app.vms.get(name)?.tags));
          await clear(name);
        }
      };

      /** After a create-type call: what may be left of `name`, and of everything else. */
      const judgeCreate = (label: string, name: string, before: Map<string, string>, r: CallResult, strict: boolean): void => {
        const vm = h.sim.app.vms.get(name);
        const seen = completeIfSeen(vm);
        if (seen) fail(`${label}: ${seen}`, `${name}`);
        if (r.status === 0) {
          if (!agentSees(vm)) fail(`${label}: answered success but ${name} is not a complete visible qube`, show(r));
        } else {
          // A killed process answers nothing (no exit status); an actionable error is status 1.
          if (!strict && !isRefused(r) && r.status !== 1 && r.status !== -1) fail(`${label}: answered ${show(r)}`, name);
          if (strict && !isRefused(r)) fail(`${label}: a failed create answered ${show(r)}, not the uniform refusal`, name);
          // A process killed after the qube was complete but before it answered leaves the complete qube (its answer lost).
          const completeBeforeKill = r.status === -1 && agentSees(vm) && seen === null;
          if (completeBeforeKill) count('complete before the kill');
          else if (vm && agentSees(vm)) fail(`${label}: the call failed but ${name} is visible`, JSON.stringify(vm.tags));
          if (vm && strict && !(vm.tags.includes(INCOMPLETE) && vm.tags.includes(ROLLBACK_FAILED))) {
            fail(`${label}: ${name} was left behind without the loud half-state: ${JSON.stringify(vm.tags)}`, name);
          }
          if (vm && !strict && !completeBeforeKill) count(vm.tags.includes(INCOMPLETE) ? 'left hidden and marked incomplete' : 'left unmarked outside the umbrella (reserved-prefix residual)');
          if (vm && !completeBeforeKill) leftovers.push(label, name);
        }
        for (const q of quietlyChanged(h, before)) fail(`${label}: ${q}`, name);
      };
      /** The operator's repair of a loud half-state, so the next case starts clean. */
      const unmark = async (qube: string): Promise<void> => {
        const vm = h.sim.app.vms.get(qube);
        if (!vm) return;
        if (vm.tags.includes(INCOMPLETE)) await h.qubesd.call('admin.vm.tag.Remove', qube, INCOMPLETE);
        if (vm.features['prohibit-start'] !== undefined && qube === 'ai-dvm') await h.qubesd.call('admin.vm.feature.Remove', qube, 'prohibit-start');
      };

      const runs = (kind: 'steps' | 'qubesd' | 'kills' | 'disk'): boolean => !sut.kinds || sut.kinds.includes(kind);
      try {
        // 1. A throw at each step of the pipeline.
        for (const op of runs('steps') ? CREATE_OPS : []) {
          const steps: string[] = [];
          const clean = await h.call(op.full, op.payload(fresh()), { fault: (s) => void steps.push(s) });
          if (clean.status !== 0) fail(`${op.op}: a clean call failed: ${show(clean)}`, op.full);
          if (steps.length === 0) fail(`${op.op}: the pipeline reported no steps`, op.full);
          for (let round = 0; round < scale; round++) {
            for (const step of steps) {
              const name = fresh();
              const before = qubesNow(h, name);
              const r = await h.call(op.full, op.payload(name), {
                fault: (s) => {
                  if (s === step) throw new Error(`injected at ${s}`);
                },
              });
              count(`step faults: ${op.op} (each of ${steps.join(', ')})`);
              judgeCreate(`${op.op} fault at ${step}`, name, before, r, true);
              await settle();
              await unmark(op.source);
            }
          }
        }

        // 2. qubesd failing the Nth call, creates and remove.
        for (const op of runs('qubesd') ? CREATE_OPS : []) {
          proxy.calls.length = 0;
          proxy.decide = () => 'forward';
          const clean = await h.call(op.full, op.payload(fresh()), { qubesd: viaProxy });
          if (clean.status !== 0) fail(`${op.op}: a clean call through the proxy failed: ${show(clean)}`, op.full);
          const total = proxy.calls.length;
          // Sampled calls, and always the one that makes the qube with its reply lost: qubesd made it, and the service must find it.
          const make = proxy.calls.findIndex((c) => c.method.startsWith('admin.vm.Create.')) + 1;
          for (let n of [...sample(rand, total, perOp), ...(make > 0 ? [-make] : [])]) {
            proxy.calls.length = 0;
            // Failed before qubesd acts (an exception reply, or no bytes), or after it acted (the reply lost).
            const how = n < 0 ? 'lose' : ((['fail', 'drop', 'lose'] as const)[n % 3] ?? 'fail');
            const targeted = n < 0;
            n = Math.abs(n);
            // The making call is found by its method: earlier calls grow in number as qubes are added.
            proxy.decide = (c) => ((targeted ? c.method.startsWith('admin.vm.Create.') : c.n === n) ? how : 'forward');
            const name = fresh();
            const before = qubesNow(h, name);
            const r = await h.call(op.full, op.payload(name), { qubesd: viaProxy });
            count(`qubesd faults: ${op.op}`);
            const failed = targeted ? proxy.calls.find((c) => c.method.startsWith('admin.vm.Create.')) : proxy.calls[n - 1];
            judgeCreate(`${op.op} with qubesd call ${n} of ${total} (${failed?.method ?? '?'}) failing`, name, before, r, false);
            const vm = h.sim.app.vms.get(name);
            if (vm && !agentSees(vm) && r.status !== 0 && !(vm.tags.includes(INCOMPLETE) && vm.tags.includes(ROLLBACK_FAILED))) {
              fail(`${op.op} with qubesd call ${n} (${failed?.method ?? '?'}) failing (${how}) left ${name} without the loud half-state`, JSON.stringify(vm.tags));
            }
            await settle();
            await unmark(op.source);
          }
        }
        if (runs('qubesd')) {
          const [first, ...rest] = targets;
          proxy.calls.length = 0;
          proxy.decide = () => 'forward';
          const clean = await h.call(qrexecService('remove', first), '', { qubesd: viaProxy });
          if (clean.status !== 0) fail(`remove: a clean call failed: ${show(clean)}`, `${first}`);
          const total = proxy.calls.length;
          const ns = sample(rand, total, perOp);
          for (const [i, n] of ns.entries()) {
            const target = rest[i];
            if (!target) break;
            proxy.calls.length = 0;
            proxy.decide = (c) => (c.n === n ? 'fail' : 'forward');
            const privateBefore = h.sim.app.vms.get(target)?.volumes['private']?.size;
            const r = await h.call(qrexecService('remove', target), '', { qubesd: viaProxy });
            count('qubesd faults: remove');
            const label = `remove of ${target} with qubesd call ${n} of ${total} (${proxy.calls[n - 1]?.method ?? '?'}) failing`;
            const vm = h.sim.app.vms.get(target);
            if (!vm) {
              fail(`${label}: the qube is gone`, show(r));
              continue;
            }
            if (vm.volumes['private']?.size !== privateBefore) fail(`${label}: its private volume changed`, target);
            const marked = vm.tags.some((t) => t.startsWith(TOMBSTONE));
            if (r.status === 0 && (agentSees(vm) || !marked || vm.power !== 'Halted')) fail(`${label}: answered success but it is not a halted, hidden tombstone`, JSON.stringify(vm.tags));
            if (r.status !== 0 && !isRefused(r)) fail(`${label}: answered ${show(r)}`, target);
            if (marked) {
              try {
                await restoreTombstone({ qubesd: h.qubesd, settings: settings(), audit, lock: () => acquireBudgetLock(h.root, 30_000) }, target);
              } catch (err) {
                fail(`${label}: its tombstone cannot be restored: ${(err as Error).message}`, JSON.stringify(vm.tags));
              }
            }
            if (!agentSees(h.sim.app.vms.get(target))) fail(`${label}: the qube is neither visible nor a restorable tombstone`, JSON.stringify(h.sim.app.vms.get(target)?.tags));
          }
        }

        // 3. Restore with qubesd failing the Nth call: it can always be finished.
        if (runs('qubesd')) {
          const [first, ...rest] = tombs;
          proxy.calls.length = 0;
          proxy.decide = () => 'forward';
          await restoreTombstone({ qubesd: viaProxy, settings: settings(), audit, lock: () => acquireBudgetLock(h.root, 30_000) }, first as string);
          const total = proxy.calls.length;
          for (const [i, n] of sample(rand, total, perOp).entries()) {
            const t = rest[i];
            if (!t) break;
            proxy.calls.length = 0;
            proxy.decide = (c) => (c.n === n ? 'fail' : 'forward');
            try {
              await restoreTombstone({ qubesd: viaProxy, settings: settings(), audit, lock: () => acquireBudgetLock(h.root, 30_000) }, t);
            } catch {
              // The fault; finishing it is what is checked.
            }
            count('qubesd faults: restore');
            const label = `restore of ${t} with qubesd call ${n} of ${total} failing`;
            const vm = h.sim.app.vms.get(t);
            if (!vm) {
              fail(`${label}: the tombstone is gone`, t);
              continue;
            }
            if (vm.tags.some((x) => x.startsWith(TOMBSTONE))) {
              try {
                await restoreTombstone({ qubesd: h.qubesd, settings: settings(), audit, lock: () => acquireBudgetLock(h.root, 30_000) }, t);
              } catch (err) {
                fail(`${label}: a second restore fails: ${(err as Error).message}`, JSON.stringify(vm.tags));
              }
            }
            const after = h.sim.app.vms.get(t);
            if (!after || !agentSees(after) || after.tags.includes(TAGS.exec) || after.tags.includes(TAGS.full)) {
              fail(`${label}: not back untiered in the umbrella`, JSON.stringify(after?.tags));
            }
          }
        }

        // 4. The service process killed at a random moment.
        proxy.decide = () => 'forward';
        const kills = [...CREATE_OPS.map((op) => ({ op: op.op, full: op.full, source: op.source, payload: op.payload }))];
        for (const op of runs('kills') ? kills : []) {
          const started = Date.now();
          const probe = spawnService(h, op.full, op.payload(fresh()));
          const probeResult = await probe.done;
          if (probeResult.status !== 0) fail(`${op.op}: a clean service process failed: ${show(probeResult)}`, op.full);
          const span = Date.now() - started;
          for (let i = 0; i < scale; i++) {
            const name = fresh();
            const before = qubesNow(h, name);
            const call = spawnService(h, op.full, op.payload(name));
            const delay = rand.int(span + 1);
            const timer = setTimeout(() => call.child.kill('SIGKILL'), delay);
            const r = await call.done;
            clearTimeout(timer);
            count(`killed service processes: ${op.op}`);
            judgeCreate(`${op.op} killed after ${delay} ms of ${span}`, name, before, r, false);
            await settle();
            await unmark(op.source);
            // The locks of the dead process are reclaimed: the next call is served.
            const next = await h.call(op.full, op.payload(fresh()));
            if (next.status !== 0) fail(`${op.op}: after a killed call, the next one failed: ${show(next)}`, `delay ${delay}`);
          }
        }
        const chain = await verifyAudit({ root: h.root });
        if (!chain.valid) fail(`audit chain broken after the faults: ${JSON.stringify(chain.problems.slice(0, 3))}`, '');

        // 5. The audit intent cannot be written: every state-changing call is refused, nothing changes.
        const log = auditLogPath(h.root);
        if (runs('disk') && existsSync('/dev/full')) {
          renameSync(log, `${log}.aside`);
          symlinkSync('/dev/full', log);
          try {
            const calls: [string, string][] = [
              ...CREATE_OPS.map((op): [string, string] => [op.full, op.payload(fresh())]),
              [qrexecService('remove', targets[targets.length - 1] as string), ''],
              [qrexecService('property.set', 'ai-box'), JSON.stringify({ name: 'memory', value: 512 })],
              [qrexecService('feature.set', 'ai-box'), JSON.stringify({ name: 'gui', value: '0' })],
              [qrexecService('start', 'ai-peer'), ''],
            ];
            for (let i = 0; i < scale; i++) {
              for (const [full, payload] of calls) {
                const before = h.state();
                const r = await h.call(full, payload);
                count('audit disk full');
                if (!isRefused(r)) fail(`${full} with the audit log on a full disk answered ${show(r)}`, payload);
                if (h.state() !== before) fail(`${full} with the audit log on a full disk changed the machine`, payload);
              }
            }
          } finally {
            unlinkSync(log);
            renameSync(`${log}.aside`, log);
          }
        }
        count('runner rejections the service process turns into the refusal', h.escapes);
      } finally {
        await proxy.close();
        await h.done();
      }
      const figures = [...counts].sort(([a], [b]) => (a < b ? -1 : 1)).map(([label, n]) => ({ label, value: String(n) }));
      const injected = [...counts].filter(([l]) => !l.startsWith('left') && !l.startsWith('runner')).reduce((s, [, n]) => s + n, 0);
      return { figures: [{ label: 'faults injected', value: String(injected) }, ...figures], failures };
    },
  };
}

export const faultsCheck = makeFaultsCheck();
