/**
 * Concurrency (SPEC §4.10, §4.12): rounds of parallel creates, clones,
 * disposables and removes at the edge of the disk budget, some in this
 * process through the runner, racing behind a barrier (barrier.ts), and some
 * as real service processes (separate pids, as qrexec starts them), all on
 * one dom0 root. After each round: the umbrella's persistent footprint
 * within the cap, no two successes for one name, every success a visible
 * qube, and in the audit log every intent with exactly one outcome, every
 * success an `ok` outcome, the chain whole.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { auditLogPath, verifyAudit } from '../../src/dom0/audit/index.js';
import { installDom0 } from '../../src/dom0/install/index.js';
import { dom0Root, startSimHost } from '../../src/sim/host.js';
import type { VmState } from '../../src/sim/qubesd/state.js';
import type { Budget, Check, CheckReport, Failure } from '../check.js';
import { BASE_SETTINGS, GiB, INCOMPLETE, InProcessHost, PRINCIPAL, TAGS, attackFleet, prng, spawnService } from '../malformed/host.js';
import type { CallResult, ServiceSut } from '../malformed/host.js';
import { qrexecService } from '../qrexec-service.js';
import { routerCall } from '../races/check.js';
import { raceCreates } from './barrier.js';
import type { Racer } from './barrier.js';

const NAME = 'concurrency';

/** The persistent footprint the cap bounds: private (not a disposable's), and root where it persists; umbrella qubes and own tombstones. */
export function umbrellaUse(vms: Iterable<VmState>, umbrella: string = TAGS.umbrella, principal = PRINCIPAL): number {
  let used = 0;
  for (const vm of vms) {
    if (vm.klass === 'AdminVM') continue;
    const tomb = vm.tags.includes(`qmcp-owner-${principal}`) && vm.tags.some((t) => t.startsWith('qmcp-tombstone'));
    if (!vm.tags.includes(umbrella) && !tomb) continue;
    if (vm.klass !== 'DispVM') used += vm.volumes['private']?.size ?? 0;
    if (vm.klass === 'TemplateVM' || vm.klass === 'StandaloneVM') used += vm.volumes['root']?.size ?? 0;
  }
  return used;
}

interface Op {
  readonly service: string;
  readonly payload: string;
  /** The name a success creates, if any. */
  readonly creates: string | null;
  readonly viaProcess: boolean;
}

function spawnCall(h: InProcessHost, op: Op): Promise<CallResult> {
  return spawnService(h, op.service, op.payload).done;
}

interface Entry {
  kind: string;
  correlation: string;
  result: string | null;
  operation: string;
}

/** Intents without exactly one outcome, and the count of `ok` outcomes. */
function auditBalance(root: string): { unmatched: string[]; ok: number } {
  const entries = readFileSync(auditLogPath(root), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Entry);
  const outcomes = new Map<string, number>();
  for (const e of entries) if (e.kind === 'outcome') outcomes.set(e.correlation, (outcomes.get(e.correlation) ?? 0) + 1);
  const unmatched = entries.filter((e) => e.kind === 'intent' && outcomes.get(e.correlation) !== 1).map((e) => `${e.operation} ${e.correlation}`);
  const ok = entries.filter((e) => e.kind === 'outcome' && e.result === 'ok').length;
  return { unmatched, ok };
}

/** Parallel creates through the router at the budget edge; what went wrong, and how many calls. */
async function throughRouter(scale: number, seed: number): Promise<{ calls: number; problems: string[] }> {
  // a short name: the host's dom0 sockets are under it, and a socket's path has room for about 100 bytes
  const dir = await mkdtemp(join(tmpdir(), 'qc-'));
  const problems: string[] = [];
  let calls = 0;
  try {
    // Room for exactly one new qube of 2 GiB.
    const probe = attackFleet();
    const settingsFile = join(dir, 'settings.json');
    const host0 = await startSimHost({ dir: join(dir, 'host'), fleet: probe, install: false });
    let cap = umbrellaUse(host0.qubesd.app.vms.values()) + 2 * GiB;
    await host0.close();
    await writeFile(settingsFile, JSON.stringify({ principal: PRINCIPAL, tags: TAGS, ...BASE_SETTINGS, poolCapBytes: cap }));
    const host = await startSimHost({ dir: join(dir, 'host'), install: true, settingsFile, askTimeoutMs: 50 });
    try {
      for (let round = 0; round < scale; round++) {
        const names = [`ai-q${seed % 1000}-${round}a`, `ai-q${seed % 1000}-${round}b`, `ai-q${seed % 1000}-${round}a`];
        const replies = await Promise.all(names.map((name) => routerCall(host, '@adminvm', qrexecService('create'), JSON.stringify({ name, template: 'ai-tpl', netvm: 'none' }))));
        calls += names.length;
        const use = umbrellaUse(host.qubesd.app.vms.values());
        if (use > cap) problems.push(`footprint ${use} over the cap ${cap}`);
        const ok = names.filter((_, i) => replies[i]?.status === 0);
        if (new Set(ok).size !== ok.length) problems.push(`two creates of one name answered success: ${JSON.stringify(ok)}`);
        // Room for one: exactly one of the three may be made.
        if (ok.length !== 1) problems.push(`${ok.length} of three racing creates succeeded with room for one: ${JSON.stringify(replies.map((r) => r.status))}`);
        // Make room again for the next round: the operator raises the cap by one qube.
        if (round + 1 < scale) {
          cap = use + 2 * GiB;
          await writeFile(settingsFile, JSON.stringify({ principal: PRINCIPAL, tags: TAGS, ...BASE_SETTINGS, poolCapBytes: cap }));
          await installDom0({ root: dom0Root(host.dir), qubesdSocket: host.qubesd.socketPath, settingsFile });
        }
      }
      const balance = auditBalance(dom0Root(host.dir));
      if (balance.unmatched.length > 0) problems.push(`intents without exactly one outcome: ${balance.unmatched.slice(0, 5).join(', ')}`);
      if (!(await verifyAudit({ root: dom0Root(host.dir) })).valid) problems.push('audit chain broken');
    } finally {
      await host.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return { calls, problems };
}

export interface ConcurrencySut extends ServiceSut {
  /** Also run some calls as real service processes (default true). */
  readonly processes?: boolean;
}

export function makeConcurrencyCheck(sut: ConcurrencySut = {}): Check {
  return {
    name: NAME,
    summary: 'parallel creates, clones, disposables and removes at the budget edge',
    async run(budget: Budget, seed: number): Promise<CheckReport> {
      const scale = Math.max(1, budget.scale);
      const rand = prng(seed);
      const failures: Failure[] = [];
      const fail = (round: number, what: string): void => {
        failures.push({ check: NAME, what: `round ${round}: ${what}`, reproduction: `--seed ${seed} --scale ${scale} --only ${NAME}` });
      };
      const peers = Array.from({ length: 6 }, (_, i) => `ai-c${i}`);
      const fleet = attackFleet(peers.map((name) => ({ name, klass: 'AppVM', template: 'ai-tpl', label: 'blue', tags: [TAGS.umbrella, TAGS.full], properties: { netvm: null } })));
      const h = await InProcessHost.start({ fleet, sut });
      let runs = 0;
      let successes = 0;
      let overBudget = 0;
      let processCalls = 0;
      let serial = 0;
      try {
        const rounds = 4 * scale;
        for (let round = 1; round <= rounds; round++) {
          const room = 1 + rand.int(2);
          const cap = umbrellaUse(h.sim.app.vms.values()) + room * 2 * GiB;
          h.writeSettings({ ...BASE_SETTINGS, poolCapBytes: cap });
          const fresh = (): string => `ai-n${seed % 1000}-${++serial}`;
          const shared = fresh();
          const removable = [...h.sim.app.vms.values()]
            .filter((v) => v.tags.includes(TAGS.umbrella) && v.tags.includes(TAGS.full) && v.klass === 'AppVM' && /^ai-(c|n)/.test(v.name))
            .map((v) => v.name);
          // In this process at most four calls run at once (the per-principal slots): one more create
          // of a fresh name than the cap has room for, then creates of one shared name (two when
          // there is room for one), so calls also race to make the same name.
          const ops: Op[] = [];
          const create = (name: string, viaProcess: boolean): Op => ({ service: qrexecService('create'), payload: JSON.stringify({ name, template: 'ai-tpl', netvm: 'none' }), creates: name, viaProcess });
          for (let i = 0; i <= room; i++) ops.push(create(fresh(), false));
          while (ops.length < 4) ops.push(create(shared, false));
          // Then, as separate service processes, more of every kind.
          const extra = sut.processes === false ? 0 : 1 + rand.int(3);
          for (let i = 0; i < extra; i++) {
            const pick = rand.int(5);
            const name = fresh();
            if (pick === 0) ops.push(create(shared, true));
            else if (pick === 1) ops.push({ service: `qmcp.Clone+${rand.pick(peers)}`, payload: JSON.stringify({ name }), creates: name, viaProcess: true });
            else if (pick === 2) ops.push({ service: qrexecService('disposable', 'ai-dvm'), payload: JSON.stringify({ name, autoCleanup: false }), creates: name, viaProcess: true });
            else if (pick === 3 && removable.length > 0) ops.push({ service: `qmcp.Remove+${rand.pick(removable)}`, payload: '', creates: null, viaProcess: true });
            else ops.push({ service: qrexecService('create.disptemplate'), payload: JSON.stringify({ name, template: 'ai-tpl' }), creates: name, viaProcess: true });
          }
          // The calls in this process race behind the barrier; the service processes run beside them.
          const inProcess = ops.filter((op) => !op.viaProcess);
          const processes = ops.filter((op) => op.viaProcess);
          processCalls += processes.length;
          const [raced, spawned] = await Promise.all([
            raceCreates(
              h.sim.socketPath,
              TAGS.umbrella,
              inProcess.map((op) => (racer: Racer) => h.call(op.service, op.payload, { qubesd: racer.qubesd, budgetLock: racer.budgetLock })),
            ),
            Promise.all(processes.map((op) => spawnCall(h, op))),
          ]);
          const results = [...inProcess.map((op, i) => ({ op, r: raced[i] as CallResult })), ...processes.map((op, i) => ({ op, r: spawned[i] as CallResult }))];
          runs += ops.length;

          const use = umbrellaUse(h.sim.app.vms.values());
          if (use > cap) fail(round, `umbrella footprint ${use} over the cap ${cap} after ${JSON.stringify(ops.map((o) => o.service))}`);
          const made = new Map<string, number>();
          for (const { op, r } of results) {
            if (r.status === 0) successes++;
            if (/over_budget/.test(r.stdout + r.stderr)) overBudget++;
            if (r.status !== 0 || !op.creates) continue;
            made.set(op.creates, (made.get(op.creates) ?? 0) + 1);
            const vm = h.sim.app.vms.get(op.creates);
            if (!vm || !vm.tags.includes(TAGS.umbrella) || vm.tags.includes(INCOMPLETE)) fail(round, `${op.service} answered success but ${op.creates} is not a complete umbrella qube`);
          }
          for (const [name, n] of made) if (n > 1) fail(round, `${n} creates of ${name} all answered success`);
          for (const vm of h.sim.app.vms.values()) {
            if (/^ai-n/.test(vm.name) && !vm.tags.includes(TAGS.umbrella) && !vm.tags.some((t) => t.startsWith('qmcp-tombstone'))) {
              fail(round, `${vm.name} exists outside the umbrella without being a tombstone: ${JSON.stringify(vm.tags)}`);
            }
          }
        }
        const balance = auditBalance(h.root);
        if (balance.unmatched.length > 0) fail(rounds, `intents without exactly one outcome: ${balance.unmatched.slice(0, 5).join(', ')}`);
        if (balance.ok !== successes) fail(rounds, `${successes} calls succeeded but the audit log has ${balance.ok} ok outcomes`);
        const report = await verifyAudit({ root: h.root });
        if (!report.valid) fail(rounds, `audit chain broken: ${JSON.stringify(report.problems.slice(0, 3))}`);
      } finally {
        await h.done();
      }
      // A few through the qrexec router of a full simulated host, as the agent makes them.
      let routed = 0;
      if (sut.processes !== false) {
        const r = await throughRouter(scale, seed);
        routed = r.calls;
        for (const what of r.problems) failures.push({ check: NAME, what: `through the router: ${what}`, reproduction: `--seed ${seed} --scale ${scale} --only ${NAME}` });
      }
      return {
        figures: [
          { label: 'concurrent runs through the router', value: String(routed) },
          { label: 'concurrent runs', value: String(runs) },
          { label: 'of them as service processes', value: String(processCalls) },
          { label: 'succeeded', value: String(successes) },
          { label: 'stopped at the budget edge', value: String(overBudget) },
        ],
        failures,
      };
    },
  };
}

export const concurrencyCheck = makeConcurrencyCheck();
