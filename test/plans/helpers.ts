/**
 * A host for plan tests: the attack fleet's simulated qubesd and dom0 root,
 * dom0 service calls through the real runner, and qrexec with the
 * simulated dom0's qrexec-client, whose calls into a qube a recording
 * stand-in answers (no sandboxes). The weakened variants load a compiled
 * module with one guard taken out.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { openAudit } from '../../src/dom0/audit/index.js';
import type { WriteDeps } from '../../src/dom0/create/deps.js';
import type { PlanOperatorDeps } from '../../src/dom0/plans/operator.js';
import type { ServiceSpec } from '../../src/dom0/service/run.js';
import { encodeExecRequest } from '../../src/shared/inqube-protocol.js';
import { planRequestJson, type PlanStep } from '../../src/shared/plan-protocol.js';
import { installDom0Client } from '../../src/sim/qrexec/dom0-seat.js';
import { routerPaths } from '../../src/sim/qrexec/router.js';
import type { Fleet } from '../../src/sim/fleet.js';
import { BASE_SETTINGS, InProcessHost, PRINCIPAL, TAGS, attackFleet, type CallResult, type ServiceSut, type SettingsFile } from '../../verify/malformed/host.js';

export { BASE_SETTINGS, PRINCIPAL, REFUSED, isRefused } from '../../verify/malformed/host.js';

/** A net-tier qube, which the attack fleet lacks. */
export const NETBOX = 'ai-netbox';

export function planFleet(): Fleet {
  return attackFleet([{ name: NETBOX, klass: 'AppVM', template: 'ai-tpl', label: 'blue', tags: [TAGS.umbrella, TAGS.net], properties: { netvm: null } }]);
}

/** A call into a qube as the stand-in saw it, with the state of ai-box's memory at that moment. */
export interface QubeCall {
  readonly qube: string;
  readonly service: string;
  readonly argument: string;
  readonly source: string;
  readonly user: string;
  readonly payload: Buffer;
  readonly memoryThen: unknown;
}

/** An exec reply of the in-qube protocol: exit status and stdout. */
export function execReply(exit: number, stdout: string): Buffer {
  const body = Buffer.from(stdout);
  return Buffer.concat([Buffer.from(`qmcp 1\nstatus ok\nexit ${exit}\ntimed_out 0\nstdout_head ${body.length}\nstdout_tail 0\nstdout_total ${body.length}\nstdout_lines 1\nstderr_head 0\nstderr_tail 0\nstderr_total 0\nstderr_lines 0\n\n`), body]);
}

export interface PlanHost {
  readonly h: InProcessHost;
  /** Every call made into a qube, in order. */
  readonly qubeCalls: QubeCall[];
  /** What the stand-in answers a call into a qube with; default: an exec reply echoing nothing, exit 0. */
  answer: (call: QubeCall) => { status: number; stdout: Buffer };
  submit(steps: readonly PlanStep[], purpose?: string, caller?: string): Promise<CallResult>;
  status(id: string, caller?: string): Promise<CallResult>;
  /** What the operator's commands use. */
  deps(journal?: string[]): PlanOperatorDeps;
  done(): Promise<void>;
}

export async function startPlanHost(settings: SettingsFile = BASE_SETTINGS, sut: ServiceSut = {}): Promise<PlanHost> {
  const h = await InProcessHost.start({ fleet: planFleet(), settings, sut });
  const qubeCalls: QubeCall[] = [];
  const ph: PlanHost = {
    h,
    qubeCalls,
    answer: () => ({ status: 0, stdout: execReply(0, '') }),
    submit: (steps, purpose = 'a test plan', caller = PRINCIPAL) => h.call('qmcp.PlanSubmit', JSON.stringify(planRequestJson({ purpose, steps })), { caller }),
    status: (id, caller = PRINCIPAL) => h.call(`qmcp.PlanStatus+${id}`, '', { caller }),
    deps: (journal = []) => ({
      root: h.root,
      qubesd: h.qubesd,
      audit: openAudit({ root: h.root }),
      log: (m) => journal.push(m),
      now: () => new Date(),
      operator: 'tester',
    }),
    done: () => h.done(),
  };
  await h.startQrexec({
    run: async (qube, service, argument, source, user, stdio) => {
      const chunks: Buffer[] = [];
      for await (const c of stdio.stdin) chunks.push(c as Buffer);
      const call = { qube, service, argument, source, user, payload: Buffer.concat(chunks), memoryThen: h.sim.app.vms.get('ai-box')?.props['memory'] };
      qubeCalls.push(call);
      const r = ph.answer(call);
      await new Promise<void>((done) => stdio.stdout.write(r.stdout, () => done()));
      return r.status;
    },
  });
  installDom0Client(h.root, routerPaths(join(dirname(h.root), 'router')).dom0Socket);
  return ph;
}

/** Starts the qubes the in-qube steps call into (the stand-in runs nothing, Qubes' state says running). */
export async function startQubes(ph: PlanHost, ...names: string[]): Promise<void> {
  for (const n of names) await ph.h.qubesd.call('admin.vm.Start', n);
}

const b = (s: string): Buffer => Buffer.from(s);

/** Steps as plan_submit sends them, one helper per form. */
export const step = {
  dom0: (operation: string, argument: string, payload?: unknown): PlanStep => ({ operation, argument, payload: payload === undefined ? Buffer.alloc(0) : b(JSON.stringify(payload)) }),
  admin: (operation: string, qube: string, payload = ''): PlanStep => ({ operation, qube, argument: '', payload: b(payload) }),
  /** qmcp.FirewallSet, its payload the rules in Qubes' line syntax. */
  firewall: (qube: string, rules: string): PlanStep => ({ operation: 'firewall.set', argument: qube, payload: b(rules) }),
  run: (qube: string, shell: string, timeoutSeconds = 30): PlanStep => ({ operation: 'run', qube, argument: '', payload: encodeExecRequest({ shell, timeoutSeconds, outputLimit: 4096 }) }),
  inQube: (operation: string, qube: string, argument: string, payload: Buffer): PlanStep => ({ operation, qube, argument, payload }),
};

/** The JSON a call printed. */
export function json(r: CallResult): Record<string, unknown> {
  assert.equal(r.status, 0, JSON.stringify(r));
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

const here = dirname(fileURLToPath(import.meta.url));
const compiled = resolve(here, '..', '..', 'src');
const scratch = mkdtempSync(join(tmpdir(), 'qmcp-plan-mutant-'));
let mutants = 0;

/**
 * The compiled module `path` (under dist/src) with `guard` replaced by
 * `weakened` (null: as it is); its relative imports point at the real
 * modules, or at `links` (module path to a mutant's URL) for a module
 * weakened with it.
 */
export function weakened(path: string, guard: string | null, weakenedTo = '', links: Readonly<Record<string, string>> = {}): string {
  const file = join(compiled, path);
  const text = readFileSync(file, 'utf8');
  if (guard !== null) assert.equal(text.split(guard).length, 2, `the guard ${JSON.stringify(guard)} is not in ${path} exactly once`);
  const mutated = (guard === null ? text : text.replace(guard, weakenedTo)).replace(/from '(\.\.?\/[^']+)'/g, (_, rel: string) => {
    const target = resolve(dirname(file), rel);
    const link = Object.entries(links).find(([p]) => join(compiled, p) === target);
    return `from '${link ? link[1] : pathToFileURL(target).href}'`;
  // a package the mutant imports is the one the real module resolves
  }).replace(/from '([^.'][^':]*)'/g, (_, pkg: string) => `from '${import.meta.resolve(pkg)}'`);
  const out = join(scratch, `${path.replace(/\//g, '_')}-${mutants++}.js`);
  writeFileSync(out, mutated);
  return pathToFileURL(out).href;
}

/** A service table with the handler of OPERATION replaced by MAKE's (given the real handlers by operation). */
export function replacing(operation: string, make: (write: WriteDeps, handlers: ReadonlyMap<string, ServiceSpec<unknown>>) => ServiceSpec<unknown>): ServiceSut {
  return {
    table: (real, write) => {
      const byOperation = new Map([...real.values()].map((spec) => [spec.operation, spec]));
      return new Map([...real].map(([service, spec]) => [service, spec.operation === operation ? make(write, byOperation) : spec]));
    },
  };
}
