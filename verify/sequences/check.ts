/**
 * Model-based sequences (SPEC §4.2, 4.3, 4.5–4.7, 4.9, 4.10, 4.12): random
 * sequences of every operation of the capability model over random fleets
 * (tiers, restriction and propagating tags), both modes, every birth
 * ceiling and a disk budget near its edge: the dom0 services through the
 * real runner, what the policy decides alone through qrexec on the
 * installed policy (a qube's own services stand in). After every step, from dom0's
 * view of the whole machine: nothing outside the umbrella changed; tags
 * changed only on what the step created or entombed; a created qube
 * carries exactly the tags and netvm the rule gives; no qube above its
 * tier; the footprint within the cap; the audit chain whole with an intent
 * and an `ok` outcome behind every change, each entry naming the caller; every refusal the uniform one,
 * and every call naming an absent or outside qube refused; a call the
 * policy decides goes through exactly when the agent sees its target at
 * the operation's tier. Half the sequences run two principals on one
 * machine (worlds.ts): each step is made by either, judged from its
 * caller's world (and, with the gate on, its caller's own gate setting),
 * and changes nothing of the other's, its plans included. fast-check
 * shrinks a failing sequence.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { auditLogPath, verifyAudit } from '../../src/dom0/audit/index.js';
import { OPERATIONS } from '../../src/shared/model/capabilities.js';
import type { Operation } from '../../src/shared/model/capabilities.js';
import type { QubeServiceHost } from '../../src/sim/qrexec/router.js';
import type { VmState } from '../../src/sim/qubesd/state.js';
import { fleetState } from '../../src/sim/fleet.js';
import { coverageFailures } from '../gaps.js';
import type { Budget, Check, CheckReport, Failure } from '../check.js';
import { bounded, budgetCount } from '../check.js';
import { hangBoundMs } from '../hang-bound.js';
import { umbrellaUse } from '../concurrency/check.js';
import { BASE_SETTINGS, GiB, INCOMPLETE, InProcessHost, TAGS, attackFleet, inputError, isRefused, show } from '../malformed/host.js';
import type { CallResult, ServiceSut } from '../malformed/host.js';
import { IDLE_MS, startAnswerer } from '../gate/answerer.js';
import type { Answered } from '../gate/answerer.js';
import type { GateChoice } from '../gate/settings.js';
import { gateSetting } from '../gate/settings.js';
import { gateOf } from '../../src/shared/model/gate.js';
import { plansDir } from '../../src/dom0/plans/store.js';
import type { FleetPlan, Op, SettingsPlan } from './ops.js';
import { SWITCH_MODE, aimRestores, fleetPlanArbitrary, opArbitrary, sequencesGaps, settingsPlanArbitrary } from './ops.js';
import type { World } from './worlds.js';
import { FIRST, SECOND, asSecond, ofWorld, secondWorld } from './worlds.js';

const NAME = 'sequences';
const TOMBSTONE = /^qmcp-tombstone-/;
const TIERS = ['read', 'exec', 'net', 'full'] as const;
/** Operator tags of the generated fleets. */
const RESTRICTION = 'ai-lock';
const PROPAGATING = 'op-keep';
/** The operator's firewall (also the fleet's global default_netvm). */
const OPERATOR_NET = 'sys-firewall';

type Machine = Map<string, VmState>;

class Violation extends Error {}

function machine(h: InProcessHost): Machine {
  return new Map(h.sim.app.snapshot().vms.map((v) => [v.name, JSON.parse(JSON.stringify(v)) as VmState]));
}

const elevations = (w: World): readonly string[] => [w.tags.exec, w.tags.net, w.tags.full];

/** A qube of W's umbrella the agent sees: not one under construction, not a sink. */
const inside = (vm: VmState | undefined, w: World): boolean => vm !== undefined && vm.tags.includes(w.tags.umbrella) && !vm.tags.includes(INCOMPLETE) && !vm.tags.includes(w.tags.sink);

/** One of the principal's own tombstones: its owner tag and a tombstone tag, outside the umbrella. */
function ownTombstone(vm: VmState | undefined, w: World): boolean {
  return vm !== undefined && vm.tags.includes(w.owner) && vm.tags.some((t) => t.startsWith('qmcp-tombstone')) && !vm.tags.includes(w.tags.umbrella) && !vm.tags.includes(w.tags.sink);
}

function literalTier(vm: VmState, w: World): (typeof TIERS)[number] {
  if (vm.tags.includes(w.tags.full)) return 'full';
  if (vm.tags.includes(w.tags.net)) return 'net';
  if (vm.tags.includes(w.tags.exec)) return 'exec';
  return 'read';
}

/** The fleet a plan describes: the attack fleet with generated tiers, netvms and operator tags on its inside qubes; with SECOND's plan, its world beside. */
function fleetOf(plan: FleetPlan, second?: FleetPlan): ReturnType<typeof attackFleet> {
  const f = firstFleet(plan);
  return second ? { ...f, qubes: [...f.qubes, ...secondWorld(firstFleet(second))] } : f;
}

function firstFleet(plan: FleetPlan): ReturnType<typeof attackFleet> {
  const f = attackFleet();
  return {
    ...f,
    qubes: f.qubes.map((q) => {
      const tier = plan.tiers[q.name];
      if (tier === undefined) return q;
      const tags = [TAGS.umbrella, ...(tier ? [TAGS[tier]] : []), ...(plan.locked.includes(q.name) ? [RESTRICTION] : []), ...(plan.kept.includes(q.name) ? [PROPAGATING] : [])];
      const { netvm: _, ...properties } = q.properties ?? {};
      const net = plan.nets[q.name] ?? 'none';
      if (net !== 'default') properties['netvm'] = net === 'none' ? null : net === 'egress' ? FIRST.egress : OPERATOR_NET;
      return { ...q, tags, properties };
    }),
  };
}

/** A qube's effective netvm: its own, or the global default the fleet sets. */
function netvmOf(vm: VmState): unknown {
  return 'netvm' in vm.props ? vm.props['netvm'] : OPERATOR_NET;
}

/** The tags the birth rule (SPEC §4.5, 4.6) gives a qube made from `source`, as written in the SPEC. */
function expectedTags(source: VmState, kind: 'template' | 'clone' | 'disposable', ceiling: (typeof TIERS)[number], w: World): Set<string> {
  const tier = TIERS[Math.min(TIERS.indexOf(literalTier(source, w)), TIERS.indexOf(ceiling))] as (typeof TIERS)[number];
  const out = new Set<string>([w.tags.umbrella, w.owner]);
  if (tier !== 'read') out.add(w.tags[tier]);
  if (source.tags.includes(RESTRICTION)) out.add(RESTRICTION);
  if (kind === 'clone' && source.tags.includes(PROPAGATING)) out.add(PROPAGATING);
  return out;
}

interface AuditLine {
  readonly kind: string;
  readonly principal?: string;
  readonly correlation?: string;
  readonly result?: string | null;
}

function auditLines(root: string): AuditLine[] {
  return readFileSync(auditLogPath(root), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as AuditLine);
}

/** The tier the agent has over an inside qube: its literal elevation tag, or full for an untiered one in compat mode. */
function effectiveTier(vm: VmState, mode: SettingsPlan['mode'], w: World): (typeof TIERS)[number] {
  const literal = literalTier(vm, w);
  return literal === 'read' && mode === 'compat' && !elevations(w).some((e) => vm.tags.includes(e)) ? 'full' : literal;
}

/** Whether a step succeeded: a dom0 service's exit status, qubesd's reply for an Admin API call, the qube's service's status. */
function succeeded(op: Operation, r: CallResult): boolean {
  return r.status === 0 && (op.target !== 'admin-api' || r.stdout.startsWith('0\0'));
}

/** What the step judged: the operation, where the policy let it run in a qube, the mode then, and the gate. */
interface Context {
  readonly op: Operation;
  /** The world of the principal that made the step. */
  readonly world: World;
  readonly ran: readonly { readonly qube: string; readonly service: string }[];
  readonly mode: SettingsPlan['mode'];
  /** Whether the installed gate asks for this operation. */
  readonly gated: boolean;
  /** What the step made the operator answer (requests and dialogs). */
  readonly asked: readonly Answered[];
}

/** Whether the operator denied the step's own call (a plan it submitted is answered apart). */
const deniedIn = (ctx: Pick<Context, 'asked'>): boolean => ctx.asked.some((a) => a.kind !== 'plan' && a.decision === 'deny');

/** The qubes a submitted plan's start steps name. */
function planStarts(payload: string): string[] {
  const steps = (JSON.parse(payload) as { steps: { operation: string; argument: string }[] }).steps;
  return steps.filter((s) => s.operation === 'start').map((s) => s.argument);
}

/**
 * 10. The gate: only an operation the settings gate makes the operator
 * answer (and a plan only once one was submitted), and only about qubes of
 * the agent's world as they were before the step; a gated call that is not
 * refused was asked about and allowed; a denied one is the uniform refusal
 * and changes nothing; every request of a dom0 service is in the audit log.
 */
function judgeGate(ctx: Context, r: CallResult, changed: boolean, fresh: readonly AuditLine[], before: Machine, fail: (what: string) => never): void {
  for (const a of ctx.asked) {
    const asked = `the operator was asked (${a.kind} ${a.what})`;
    if (a.kind === 'plan' ? ctx.op.id !== 'plan.submit' || r.status !== 0 : !ctx.gated) fail(`${asked} though the gate does not ask for ${ctx.op.id}`);
    const outside = a.qubes.filter((q) => !inside(before.get(q), ctx.world));
    if (outside.length > 0) fail(`${asked} about ${outside.join(', ')}, outside the agent's world`);
  }
  if (deniedIn(ctx) && (!isRefused(r) || changed)) fail('the operator denied it, but it was not refused with nothing changed');
  // a mistake in the call's own input is answered before the gate asks: it did not go through
  if (ctx.gated && !isRefused(r) && !inputError(r) && !ctx.asked.some((a) => a.kind !== 'plan' && a.decision === 'allow')) fail('it went through without the operator allowing it');
  const requests = ctx.asked.filter((a) => a.kind === 'request').length;
  const logged = fresh.filter((e) => e.kind === 'request').length;
  if (logged !== requests) fail(`the operator answered ${requests} requests, the audit log has ${logged}`);
}

/**
 * 9. A step the policy decides alone goes through exactly when the agent
 * sees its target at the operation's tier (an in-qube one only into a
 * running qube, not a paused one: autostart=no, as qrexec's parser), runs in its target only if it is an in-qube
 * service, changes nothing but its target, and leaves nothing in qmcp's
 * audit log.
 */
function judgeDecided(op: Op, ctx: Context, r: CallResult, before: Machine, after: Machine, fresh: readonly AuditLine[], fail: (what: string) => never): void {
  const vm = before.get(op.target);
  const reach = vm !== undefined && inside(vm, ctx.world) && TIERS.indexOf(effectiveTier(vm, ctx.mode, ctx.world)) >= TIERS.indexOf(ctx.op.tier) && (ctx.op.target !== 'in-qube' || vm.power === 'Running');
  // a dialog the operator denied refuses what the agent may make
  const through = reach && !deniedIn(ctx);
  if (through === isRefused(r)) {
    fail(through ? `the policy refused a call the agent may make (${ctx.mode})` : reach ? 'the operator denied it, but it went through' : `the policy let it through to a qube the agent may not reach this way (${ctx.mode})`);
  }
  // an Admin API call runs in no qube (its line carries target=dom0); an in-qube one once, in its target
  const where = ctx.op.target === 'in-qube' && through ? [op.target] : [];
  if (JSON.stringify(ctx.ran.map((x) => x.qube)) !== JSON.stringify(where)) fail(`it ran in ${JSON.stringify(ctx.ran)}, not in ${JSON.stringify(where)}`);
  for (const [name, was] of before) {
    if (name === op.target && succeeded(ctx.op, r)) continue;
    if (JSON.stringify(after.get(name)) !== JSON.stringify(was)) fail(`${name} changed`);
  }
  if (fresh.length > 0) fail(`qmcp's audit log gained ${JSON.stringify(fresh.map((e) => e.kind))}: nothing of qmcp ran`);
}

/** A step as the reports show it: who made it (with two principals), the call, its payload. */
function stepLine(op: Op): string {
  return `${op.principal ? `as ${op.principal}: ` : ''}${op.service}${op.target === '@adminvm' ? '' : ` to ${op.target}`} ${op.payload}`;
}

/**
 * What dom0 holds of each principal's plans, by principal: every file of its
 * plans directory (each plan whatever its state, and its id counter). The
 * plain pass leaves plans pending, so one principal's wait while the other
 * steps. An approval request needs no place here: it lives only while its
 * call waits, and the steps run one after another.
 */
type PlanStates = ReadonlyMap<string, ReadonlyMap<string, string>>;

function planStates(root: string, worlds: readonly World[]): PlanStates {
  return new Map(
    worlds.map((w) => {
      const dir = join(plansDir(root), w.principal);
      const files = existsSync(dir) ? readdirSync(dir).sort() : [];
      return [w.principal, new Map(files.map((f) => [`its plans file ${f}`, readFileSync(join(dir, f), 'utf8')]))];
    }),
  );
}

/** A principal's world as dom0 holds it: its qubes, tombstones and principal qube (every property), its plans, and its count of audit entries. */
function worldState(m: Machine, w: World, plans: PlanStates, audit: readonly AuditLine[]): { state: Map<string, string>; audited: number } {
  const qubes = [...m].filter(([name, vm]) => ofWorld(w, name, vm.tags)).map(([name, vm]): [string, string] => [name, JSON.stringify(vm)]);
  return { state: new Map([...qubes, ...(plans.get(w.principal) ?? [])]), audited: audit.filter((e) => e.principal === w.principal).length };
}

/** The machine, dom0's plans and the audit log at one moment, as judgeOthers compares them. */
interface Moment {
  readonly machine: Machine;
  readonly plans: PlanStates;
  readonly audit: readonly AuditLine[];
}

/** 12. No step of one principal changes anything in another's world (its qubes, its plans), nor adds to its audit entries. */
function judgeOthers(op: Op, r: CallResult, actor: World, others: readonly World[], before: Moment, after: Moment): void {
  for (const w of others) {
    const was = worldState(before.machine, w, before.plans, before.audit);
    const now = worldState(after.machine, w, after.plans, after.audit);
    const fail = (what: string): never => {
      throw new Violation(`${stepLine(op)} answered ${show(r)}: a step of ${actor.principal} changed ${w.principal}'s world: ${what}`);
    };
    for (const [name, v] of was.state) if (now.state.get(name) !== v) fail(now.state.has(name) ? `${name} changed` : `${name} left it`);
    for (const name of now.state.keys()) if (!was.state.has(name)) fail(`${name} joined it`);
    if (now.audited !== was.audited) fail(`its audit entries went from ${was.audited} to ${now.audited}`);
  }
}

/** Everything that must hold after one step, from the world of the principal that made it; throws a Violation naming what broke. */
async function judge(h: InProcessHost, op: Op, ctx: Context, r: CallResult, before: Machine, after: Machine, audit: readonly AuditLine[], auditBefore: number, settings: SettingsPlan, cap: number): Promise<void> {
  const w = ctx.world;
  const fail = (what: string): never => {
    throw new Violation(`${stepLine(op)} answered ${show(r)}: ${what}`);
  };
  const decided = ctx.op.target !== 'dom0-service';
  // 6. refusals are uniform, and naming an absent or outside qube is refused
  if (r.status === 126 && !isRefused(r)) fail('a refusal that is not the uniform one');
  if (r.status !== 0 && r.status !== 1 && r.status !== 126) fail('an exit status that is neither success, actionable nor the refusal');
  // or answered with a mistake in its own input, found before any lookup
  if (op.names.some((n) => !inside(before.get(n), w)) && !isRefused(r) && !inputError(r)) fail('a call naming an absent or outside qube was not refused');
  if (h.escapes > 0) fail('the runner rejected');

  const created = op.creates && r.status === 0 ? op.creates.name : null;
  // Qubes starts a qube's network path with it; the egress qube's own netvm is outside (a documented effect, no change the agent sees)
  // so does a plan the operator approved, which ran once it was submitted
  const started = new Set<string>();
  const starting = op.id === 'start' && r.status === 0 ? [op.names[0] ?? ''] : ctx.asked.some((a) => a.kind === 'plan' && a.decision === 'allow') ? planStarts(op.payload) : [];
  const next = (name: string): unknown => {
    const vm = before.get(name);
    return vm ? netvmOf(vm) : null;
  };
  for (const name of starting) for (let q = next(name); typeof q === 'string' && !started.has(q); q = next(q)) started.add(q);
  const entombed = op.id === 'remove' && r.status === 0 ? op.names[0] : undefined;
  // 11. a restore brings back only the agent's own tombstone, inside the umbrella at no more than the birth ceiling
  const restored = op.restores !== undefined && r.status === 0 ? op.restores : undefined;
  if (op.restores !== undefined && !isRefused(r) && !ownTombstone(before.get(op.restores), w)) fail(`${op.restores} is not its own tombstone, yet the restore was not refused`);
  // what a successful remove, shutdown or kill names: an auto-cleanup disposable goes away with all its data
  const ended = ['remove', 'shutdown', 'kill'].includes(op.id) && succeeded(ctx.op, r) ? op.names[0] : undefined;
  // 1. nothing outside the umbrella changes; 2. tags change only on what the step created or entombed
  for (const [name, was] of before) {
    const now = after.get(name);
    // an auto-cleanup disposable is the exception the agent asked for when it made it (SPEC §4.9)
    if (name === ended && !now && was.klass === 'DispVM' && was.props['auto_cleanup'] === true) continue;
    if (name === entombed) {
      if (!now) fail(`${name} was destroyed, not entombed`);
      else if (now.tags.includes(w.tags.umbrella) || elevations(w).some((e) => now.tags.includes(e)) || !now.tags.some((t) => TOMBSTONE.test(t)) || now.power !== 'Halted') {
        fail(`${name} is not a halted tombstone: ${JSON.stringify(now.tags)} ${now.power}`);
      }
      continue;
    }
    if (name === restored) {
      if (!now || !inside(now, w) || now.tags.some((t) => t.startsWith('qmcp-tombstone')) || 'prohibit-start' in now.features || now.power !== 'Halted') {
        fail(`${name} is not back as a halted qube of the umbrella: ${JSON.stringify(now?.tags)} ${now?.power}`);
      } else if (TIERS.indexOf(literalTier(now, w)) > TIERS.indexOf(settings.birthCeiling)) fail(`${name} came back at ${literalTier(now, w)}, above the birth ceiling ${settings.birthCeiling}`);
      else if (now.tags.some((t) => !was.tags.includes(t) && t !== w.tags.umbrella && !elevations(w).includes(t))) fail(`${name} came back with tags it did not have: ${JSON.stringify(now.tags)}`);
      continue;
    }
    if (!now) fail(`${name} disappeared`);
    else if (!inside(was, w) && JSON.stringify(started.has(name) ? { ...now, power: was.power } : now) !== JSON.stringify(was)) fail(`${name}, outside the umbrella, changed`);
    else if (JSON.stringify(now?.tags) !== JSON.stringify(was.tags)) fail(`the tags of ${name} changed: ${JSON.stringify(was.tags)} -> ${JSON.stringify(now?.tags)}`);
  }
  for (const [name, vm] of after) {
    if (before.has(name)) continue;
    if (name !== created) fail(`${name} appeared (${JSON.stringify(vm.tags)}) though the step created nothing by that name`);
  }
  // 3, 5. a created qube: exactly the tags of the rule, the inherited netvm or none, set explicitly
  if (created && op.creates) {
    const vm = after.get(created) as VmState;
    const source = before.get(op.creates.source);
    if (!source) fail(`created ${created} from a source that did not exist`);
    else {
      const want = expectedTags(source, op.creates.kind, settings.birthCeiling, w);
      const have = new Set(vm.tags.filter((t) => !t.startsWith('created-by-') && !t.startsWith('disp-created-by-')));
      if (have.size !== want.size || [...want].some((t) => !have.has(t))) fail(`${created} carries ${JSON.stringify([...have])}, the rule gives ${JSON.stringify([...want])}`);
      // a template's netvm is its update path: what is made from one takes the principal's egress; a
      // clone or disposable keeps the source's path only if it is the egress qube or none, else the egress
      const inherited = op.creates.kind === 'template' || source.klass === 'TemplateVM' || netvmOf(source) !== null ? w.egress : null;
      if (!('netvm' in vm.props) || !('default_dispvm' in vm.props)) fail(`${created} has netvm or default_dispvm left to a global default`);
      const netvm = vm.props['netvm'] ?? null;
      if (netvm !== null && (op.creates.netvmNone || netvm !== inherited)) fail(`${created} has netvm ${String(netvm)}, not ${op.creates.netvmNone ? 'none' : String(inherited)}`);
      if (vm.props['provides_network'] === true) fail(`${created} provides network`);
    }
  }
  // 7. no step gives a qube of the agent's world a network path outside it: a netvm set or changed is the egress qube or none
  for (const [name, vm] of after) {
    if (!inside(vm, w) && !vm.tags.includes(w.owner) && !vm.tags.includes(INCOMPLETE)) continue;
    const was = before.get(name);
    const now = netvmOf(vm);
    if (was && now === netvmOf(was)) continue;
    if (now !== null && now !== w.egress) fail(`${name} now has netvm ${String(now)}, a path outside the umbrella`);
  }
  for (const [name, vm] of after) {
    if (elevations(w).filter((e) => vm.tags.includes(e)).length > 1 && elevations(w).filter((e) => before.get(name)?.tags.includes(e)).length <= 1) fail(`${name} now carries two elevation tags`);
  }
  // 4. the budget
  const use = umbrellaUse(after.values(), w.tags.umbrella, w.principal);
  if (use > cap && use > umbrellaUse(before.values(), w.tags.umbrella, w.principal)) fail(`footprint ${use} over the cap ${cap}`);
  // 5. the audit: a whole chain, and an intent with an ok outcome behind every change
  if (!(await verifyAudit({ root: h.root })).valid) fail('the audit chain does not verify');
  const fresh = audit.slice(auditBefore);
  // each principal has its own audit identity: every entry of the agent's call names it
  for (const e of fresh) if (['intent', 'outcome', 'refusal'].includes(e.kind) && e.principal !== w.principal) fail(`an audit ${e.kind} names ${JSON.stringify(e.principal)}, not the caller ${w.principal}`);
  const changed = [...after].some(([n, v]) => JSON.stringify(before.get(n)) !== JSON.stringify(v)) || after.size !== before.size;
  judgeGate(ctx, r, changed, fresh, before, fail);
  if (decided) return judgeDecided(op, ctx, r, before, after, fresh, fail);
  if (fresh.length === 0 && (isRefused(r) || !ctx.op.readOnly)) fail(isRefused(r) ? 'a refusal left no audit entry' : 'a state-changing call left no audit entry');
  if (changed) {
    const intents = fresh.filter((e) => e.kind === 'intent');
    const ok = intents.some((i) => fresh.some((e) => e.kind === 'outcome' && e.correlation === i.correlation && e.result === 'ok'));
    if (!ok) fail('the machine changed without an audit intent and an ok outcome');
    if (r.status !== 0) fail('the machine changed though the call did not succeed');
  }
  // every intent exactly one outcome: under one correlation they alternate (a plan's steps share its correlation and run in order)
  for (const c of new Set(fresh.filter((e) => e.kind === 'intent').map((e) => e.correlation))) {
    const pairs = fresh.filter((e) => e.correlation === c && (e.kind === 'intent' || e.kind === 'outcome')).map((e) => e.kind);
    if (pairs.length % 2 !== 0 || pairs.some((k, j) => k !== (j % 2 === 0 ? 'intent' : 'outcome'))) fail('an audit intent without exactly one outcome');
  }
}

export interface SequencesSut extends ServiceSut {
  /** The model the check covers (default OPERATIONS; a test adds a fixture row). */
  readonly ops?: readonly Operation[];
  /** Steps of these operations only, by id (a test of one weakened path); default: every one. */
  readonly operations?: readonly string[];
  /** A policy file read before qmcp's own (a variant with a leaky line). */
  readonly extraPolicy?: string;
  /** Sequences run before the drawn ones (a test's case that chance would rarely draw). */
  readonly examples?: readonly Sequence[];
  /** Only sequences with this many principals (a test of one weakened path); default: half with one, half with two. */
  readonly principals?: 1 | 2;
  /** Steps per sequence at most (default 15). */
  readonly maxSteps?: number;
  /** Shrink a failing sequence (default true); a test that only needs the catch may skip it. */
  readonly shrink?: boolean;
  /** Only the sequences with the gate on (a test of a weakened gate). */
  readonly gateOnly?: boolean;
}

/** What one sequence runs: the first principal's fleet and settings, its steps, and with two principals the second's. */
export interface Sequence {
  readonly plan: FleetPlan;
  readonly settings: SettingsPlan;
  readonly ops: readonly Op[];
  readonly second: { readonly plan: FleetPlan; readonly settings: SettingsPlan } | null;
}

/** The gate on for a sequence: what asks for the first principal and for the second, and the seed its answerer decides by. */
interface GateRun {
  readonly asks: GateChoice;
  readonly second?: GateChoice;
  readonly seed: number;
}

const gateOne: fc.Arbitrary<GateRun> = fc.record({ asks: fc.constantFrom<GateChoice>('every', 'defaults'), seed: fc.nat() });
/** Each principal's own setting, drawn apart: one may have the gate off (not both, which is the plain pass). */
const anyChoice = fc.constantFrom<GateChoice>('every', 'defaults', 'off');
const gateTwo: fc.Arbitrary<GateRun> = fc.record({ asks: anyChoice, second: anyChoice, seed: fc.nat() }).filter((g) => g.asks !== 'off' || g.second !== 'off');

interface Tally {
  sequences: number;
  steps: number;
  changing: number;
  refusals: number;
  creates: number;
  removes: number;
  restores: number;
  switches: number;
  decided: number;
  decidedThrough: number;
  requests: number;
  dialogs: number;
  plans: number;
  allowed: number;
  deniedSteps: number;
  twoPrincipals: number;
  secondSteps: number;
  secondChanging: number;
  /** Steps of the second principal the operator answered (a request, a dialog or a plan). */
  secondAsked: number;
}

/** Sequences run at once, each lane a fast-check run of its own. */
const LANES = 4;
/** What separates one lane's seed from the next's. */
const LANE_SEED = 0x9e3779b9;

function sumTallies(tallies: readonly Tally[]): Tally {
  const sum = emptyTally();
  for (const t of tallies) for (const k of Object.keys(sum) as (keyof Tally)[]) sum[k] += t[k];
  return sum;
}

const emptyTally = (): Tally => ({ sequences: 0, steps: 0, changing: 0, refusals: 0, creates: 0, removes: 0, restores: 0, switches: 0, decided: 0, decidedThrough: 0, requests: 0, dialogs: 0, plans: 0, allowed: 0, deniedSteps: 0, twoPrincipals: 0, secondSteps: 0, secondChanging: 0, secondAsked: 0 });

/** Stands in for the qubes' own services: records where the policy let a call run, and answers success. */
function recordingQubes(ran: { qube: string; service: string }[]): QubeServiceHost {
  return {
    run: async (qube, service, _argument, _source, _user, stdio) => {
      ran.push({ qube, service });
      if (!stdio.stdin.readableEnded) {
        const ended = new Promise((resolve) => stdio.stdin.once('end', resolve));
        stdio.stdin.resume();
        await ended;
      }
      return 0;
    },
  };
}

/** One principal of a running sequence: its world, its settings, its cap, its gate setting (none in the plain pass), and its mode now. */
interface Seat {
  readonly world: World;
  readonly settings: SettingsPlan;
  readonly cap: number;
  readonly gate: GateChoice | null;
  mode: SettingsPlan['mode'];
}

async function runSequence(sut: SequencesSut, model: ReadonlyMap<string, Operation>, seq: Sequence, tally: Tally | null, gate: GateRun | null): Promise<void> {
  const { ops } = seq;
  const fleet = fleetOf(seq.plan, seq.second?.plan);
  // the machine's footprint as it boots: what its state file holds
  const boot = fleetState(fleet).vms;
  const seat = (world: World, settings: SettingsPlan, asks: GateChoice | undefined): Seat => ({ world, settings, cap: umbrellaUse(boot, world.tags.umbrella, world.principal) + settings.roomGiB * GiB, gate: asks ?? null, mode: settings.mode });
  const seats = [seat(FIRST, seq.settings, gate?.asks), ...(seq.second ? [seat(SECOND, seq.second.settings, gate?.second ?? gate?.asks)] : [])];
  const entry = (s: Seat): Record<string, unknown> => ({
    ...BASE_SETTINGS,
    ...(s.world === FIRST ? {} : { principal: s.world.principal, tags: s.world.tags, namePrefix: s.world.prefix, egressQube: s.world.egress }),
    mode: s.mode,
    birthCeiling: s.settings.birthCeiling,
    poolCapBytes: s.cap,
    ...(s.gate ? { gate: gateSetting(s.gate) } : {}),
  });
  // what an install writes: one principal's file, or the list of both (the first's own world first, as a single file had it)
  const install = (h: InProcessHost): void => (seats.length === 1 ? h.writeSettings(entry(seats[0] as Seat)) : h.writePrincipals(seats.map((s) => ({ principal: s.world.principal, tags: s.world.tags, ...entry(s) }))));
  const h = await InProcessHost.start({ fleet, settings: entry(seats[0] as Seat), sut });
  let answerer: ReturnType<typeof startAnswerer> | null = null;
  try {
    const ran: { qube: string; service: string }[] = [];
    if (sut.extraPolicy !== undefined) h.addPolicy('10-weakened.policy', sut.extraPolicy);
    await h.startQrexec(recordingQubes(ran));
    if (seats.length > 1) install(h);
    if (gate) answerer = startAnswerer({ root: h.root, askSocket: h.askSocket as string, qubesdSocket: h.sim.socketPath, seed: gate.seed, idleMs: IDLE_MS });
    if (tally) tally.sequences++;
    if (tally && seats.length > 1) tally.twoPrincipals++;
    for (const op of ops) {
      const actor = seats.find((s) => s.world.principal === (op.principal ?? FIRST.principal)) as Seat;
      if (op.service === SWITCH_MODE) {
        // what `qmcp dom0 mode` installs: the settings and the policy rendered from them, in one step
        actor.mode = actor.mode === 'compat' ? 'least-privilege' : 'compat';
        const unchanged = JSON.stringify([...machine(h)]);
        install(h);
        if (JSON.stringify([...machine(h)]) !== unchanged) throw new Violation('switching the mode changed a qube');
        if (tally) tally.switches++;
        continue;
      }
      const operation = model.get(op.id) as Operation;
      const before = machine(h);
      const auditAtStart = auditLines(h.root);
      const worlds = seats.map((s) => s.world);
      const plansBefore = planStates(h.root, worlds);
      ran.length = 0;
      const from = answerer?.answered.length ?? 0;
      const caller = actor.world.principal;
      const calling = op.target === '@adminvm' ? h.call(op.service, op.payload, { caller }) : h.qrexec(op.target, op.service, op.payload, caller);
      const called = await (answerer ? answerer.during(calling) : calling);
      // a plan it submitted is answered (and run, if approved) before the step is judged
      await answerer?.settlePlans();
      const after = machine(h);
      const asked = answerer?.answered.slice(from) ?? [];
      if (answerer && answerer.errors.length > 0) throw new Violation(`the answerer failed: ${answerer.errors.join('; ')}`);
      // the newlines a waiting service wrote before its answer say only that it waited
      const r = asked.length > 0 ? { ...called, stdout: called.stdout.replace(/^\n+/, '') } : called;
      // judged by the caller's own gate setting
      const gated = actor.gate !== null && gateOf({ gate: { ...gateSetting(actor.gate) } }, operation) === 'ask';
      const audit = auditLines(h.root);
      const others = worlds.filter((w) => w !== actor.world);
      judgeOthers(op, r, actor.world, others, { machine: before, plans: plansBefore, audit: auditAtStart }, { machine: after, plans: planStates(h.root, worlds), audit });
      await judge(h, op, { op: operation, world: actor.world, ran: [...ran], mode: actor.mode, gated, asked }, r, before, after, audit, auditAtStart.length, actor.settings, actor.cap);
      if (tally) {
        for (const a of asked) {
          if (a.kind === 'request') tally.requests++;
          else if (a.kind === 'ask') tally.dialogs++;
          else tally.plans++;
          if (a.decision === 'allow') tally.allowed++;
        }
        if (deniedIn({ asked })) tally.deniedSteps++;
        tally.steps++;
        if (actor.world !== FIRST) tally.secondSteps++;
        if (actor.world !== FIRST && asked.length > 0) tally.secondAsked++;
        if (operation.target !== 'dom0-service') tally.decided++;
        if (operation.target !== 'dom0-service' && !isRefused(r)) tally.decidedThrough++;
        if (isRefused(r)) tally.refusals++;
        if (JSON.stringify([...before]) !== JSON.stringify([...after])) {
          tally.changing++;
          if (actor.world !== FIRST) tally.secondChanging++;
        }
        if (op.creates && r.status === 0) tally.creates++;
        if (op.id === 'remove' && r.status === 0) tally.removes++;
        if (op.id === 'tombstone.restore' && r.status === 0) tally.restores++;
      }
    }
  } finally {
    await answerer?.stop();
    await h.done();
  }
}

export function makeSequencesCheck(sut: SequencesSut = {}): Check {
  return {
    name: NAME,
    summary: 'random sequences of agent operations over random fleets, tiers and modes, with the invariants checked after every step',
    async run(budget: Budget, seed: number): Promise<CheckReport> {
      const scale = Math.max(1, budget.scale);
      const model = sut.ops ?? OPERATIONS;
      const gaps = sequencesGaps(model);
      if (gaps.length > 0) return { figures: [], failures: coverageFailures(NAME, gaps) };
      const byId = new Map(model.map((o) => [o.id, o]));
      const op = opArbitrary(model.filter((o) => !sut.operations || sut.operations.includes(o.id)));
      const length = { minLength: 4, maxLength: sut.maxSteps ?? 15 };
      const one: fc.Arbitrary<Sequence> = fc.record({ plan: fleetPlanArbitrary, settings: settingsPlanArbitrary, ops: fc.array(op, length).map(aimRestores), second: fc.constant(null) });
      // each step made by either principal, the second's with every name swapped between the worlds
      const two: fc.Arbitrary<Sequence> = fc.record({
        plan: fleetPlanArbitrary,
        settings: settingsPlanArbitrary,
        ops: fc.array(fc.oneof(op, op.map(asSecond)), length).map(aimRestores),
        second: fc.record({ plan: fleetPlanArbitrary, settings: settingsPlanArbitrary }),
      });
      const sequence = sut.principals === 1 ? one : sut.principals === 2 ? two : fc.oneof(one, two);
      // a hang bound, not a budget: a run fast-check interrupted would pass with fewer sequences
      const options = { endOnFailure: sut.shrink === false, maxSkipsPerRun: 0, interruptAfterTimeLimit: hangBoundMs(180 * 60_000), markInterruptAsFailure: true };
      const failures: Failure[] = [];
      const report = (out: { failed: boolean; counterexample: unknown[] | null; errorInstance: unknown; numShrinks: number }, lane: number, gate: boolean): void => {
        if (!out.failed) return;
        // the gate pass draws a sequence and its gate as one pair
        const [seq, gateRun] = ((gate ? out.counterexample?.[0] : out.counterexample) ?? []) as [Sequence?, GateRun?];
        const second = seq?.second ? `, ${SECOND.principal}'s fleet ${JSON.stringify(seq.second.plan)}, settings ${JSON.stringify(seq.second.settings)}` : '';
        failures.push({
          check: NAME,
          what: out.errorInstance instanceof Error ? out.errorInstance.message : String(out.errorInstance),
          reproduction: `--seed ${seed} --scale ${scale} --only ${NAME}; lane ${lane}${gate ? ' with the gate on' : ''}, shrunk after ${out.numShrinks} shrinks: fleet ${JSON.stringify(seq?.plan)}, settings ${JSON.stringify(seq?.settings)}${second}${gate ? `, gate ${JSON.stringify(gateRun)}` : ''}, steps ${JSON.stringify(seq?.ops.map(stepLine))}`,
        });
      };
      /**
       * The runs in LANES lanes at once, each its own fast-check run on a seed
       * of its own (a sequence has a machine of its own, so their order is
       * nothing the invariants depend on): one waits on its disk while another
       * computes. Shrinking reruns are not counted.
       */
      const pass = async <A extends unknown[]>(numRuns: number, laneSeed: (lane: number) => number, property: (tally: Tally, counted: () => boolean) => fc.IAsyncProperty<A>, gate: boolean, given: readonly A[]): Promise<Tally> => {
        const lanes = await bounded(LANES, LANES, async (lane) => {
          const tally = emptyTally();
          const runs = Math.floor(numRuns / LANES) + (lane < numRuns % LANES ? 1 : 0);
          const examples = lane === 0 ? { examples: [...given] } : {};
          return { tally, out: runs > 0 ? await fc.check(property(tally, () => tally.sequences < runs), { seed: laneSeed(lane), numRuns: runs, ...options, ...examples }) : null };
        });
        // in the lanes' order, whichever ended first
        for (const [lane, { out }] of lanes.entries()) if (out) report(out, lane, gate);
        return sumTallies(lanes.map((l) => l.tally));
      };
      const numRuns = budgetCount(scale, 60, 800);
      const plain = sut.gateOnly
        ? emptyTally()
        : await pass(
            numRuns,
            (lane) => (seed + LANE_SEED * lane) >>> 0,
            (tally, counted) => fc.asyncProperty(sequence, (seq) => runSequence(sut, byId, seq, counted() ? tally : null, null)),
            false,
            (sut.examples ?? []).map((seq): [Sequence] => [seq]),
          );

      // a smaller pass with the gate on, one principal or two as above, each request and dialog answered by a seeded answerer; one failure is enough
      const gatedOne = fc.tuple(one, gateOne);
      const gatedTwo = fc.tuple(two, gateTwo);
      const gatedSequence = sut.principals === 1 ? gatedOne : sut.principals === 2 ? gatedTwo : fc.oneof(gatedOne, gatedTwo);
      const gateRuns = budgetCount(scale, 20, 200);
      const gated =
        failures.length > 0
          ? emptyTally()
          : await pass(
              gateRuns,
              (lane) => ((seed ^ 0x6a7e) + LANE_SEED * lane) >>> 0,
              (tally, counted) => fc.asyncProperty(gatedSequence, ([seq, gate]) => runSequence(sut, byId, seq, counted() ? tally : null, gate)),
              true,
              [],
            );
      return {
        figures: [
          { label: 'sequences, all', value: String(plain.sequences + gated.sequences) },
          { label: 'sequences', value: String(plain.sequences) },
          { label: 'of them with two principals', value: String(plain.twoPrincipals) },
          { label: 'steps of the second principal', value: String(plain.secondSteps) },
          { label: 'of them changed the machine', value: String(plain.secondChanging) },
          { label: 'steps', value: String(plain.steps) },
          { label: 'steps that changed the machine', value: String(plain.changing) },
          { label: 'steps the policy decided alone', value: String(plain.decided) },
          { label: 'of them let through', value: String(plain.decidedThrough) },
          { label: 'refused steps', value: String(plain.refusals) },
          { label: 'qubes created', value: String(plain.creates) },
          { label: 'qubes entombed', value: String(plain.removes) },
          { label: 'tombstones restored', value: String(plain.restores) },
          { label: 'mode switches mid-sequence', value: String(plain.switches) },
          { label: 'sequences with the gate on', value: String(gated.sequences) },
          { label: 'gate: of them with two principals', value: String(gated.twoPrincipals) },
          { label: 'gate: steps', value: String(gated.steps) },
          { label: 'gate: steps of the second principal', value: String(gated.secondSteps) },
          { label: 'gate: of them answered by the operator', value: String(gated.secondAsked) },
          { label: 'gate: steps that changed the machine', value: String(gated.changing) },
          { label: 'gate: requests answered', value: String(gated.requests) },
          { label: 'gate: dialogs answered', value: String(gated.dialogs) },
          { label: 'gate: plans answered (approved ones run)', value: String(gated.plans) },
          { label: 'gate: of them allowed', value: String(gated.allowed) },
          { label: 'gate: steps denied (refused, nothing changed)', value: String(gated.deniedSteps) },
        ],
        failures,
      };
    },
  };
}

export const sequencesCheck = makeSequencesCheck();
