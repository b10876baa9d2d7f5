/**
 * The agent operations a model-based sequence is made of: every operation
 * of the capability model (`STEPS`, keyed by operation id), with arguments
 * and targets drawn from visible, outside, absent and just-created qubes,
 * as fast-check arbitraries (so a failing sequence shrinks).
 */
import fc from 'fast-check';
import {
  encodeCopyToRequest,
  encodePortForwardRequest,
  encodeExecRequest,
  encodeListDirRequest,
  encodeReadFileRequest,
  encodeStatRequest,
  encodeJobKillRequest,
  encodeJobListRequest,
  encodeJobOutputRequest,
  encodeJobWaitRequest,
  encodeWriteFileRequest,
} from '../../src/shared/inqube-protocol.js';
import { OPERATIONS } from '../../src/shared/model/capabilities.js';
import type { Operation } from '../../src/shared/model/capabilities.js';
import { gapsIn } from '../gaps.js';
import { qrexecService } from '../qrexec-service.js';

/** Qubes of the fleet inside the umbrella (their tiers are generated). */
export const INSIDE = ['ai-box', 'ai-peer', 'ai-read', 'ai-execbox', 'ai-dvm'] as const;
/** Names a sequence may create; a later step may name them. */
export const NEW_NAMES = ['ai-n1', 'ai-n2', 'ai-n3'] as const;
/**
 * Every name a step may act on: inside, the umbrella's template and egress, outside, the sink, absent, created,
 * and the second principal's qubes of a sequence with two (worlds.ts), absent in one with one.
 */
export const TARGETS = [...INSIDE, 'ai-tpl', 'ai-egress', 'vault', 'ai-outside', 'debian', 'sys-firewall', 'drop', 'mcp-control', 'ai-nothing', 'oc-box', 'oc-drop', 'other-control', ...NEW_NAMES] as const;

export interface Op {
  /** The operation of the model, or SWITCH_MODE. */
  readonly id: string;
  /** The qrexec service, `service` or `service+ARG`. */
  readonly service: string;
  /** `@adminvm` for a dom0 service; for what the policy decides, the qube the call targets. */
  readonly target: string;
  readonly payload: string;
  /** The qube a success creates. */
  readonly creates: { readonly name: string; readonly source: string; readonly kind: 'template' | 'clone' | 'disposable'; readonly netvmNone: boolean } | null;
  /** The qubes the call names (target, argument, template, backend, property value). */
  readonly names: readonly string[];
  /** The tombstone a restore names: outside the umbrella when it is one, so not among `names`. */
  readonly restores?: string;
  /** The principal that makes the step; the first when absent. */
  readonly principal?: string;
  /** A restore aimed at one of the names its principal's earlier removes named (`aimRestores`), this one modulo their count. */
  readonly aim?: number;
}

const OTHERS = TARGETS.filter((t) => !(INSIDE as readonly string[]).includes(t) && !(NEW_NAMES as readonly string[]).includes(t));
/** Not an agent call: the operator switches between compat and least-privilege (settings and policy together). */
export const SWITCH_MODE = 'operator:switch-mode';

/** Mostly qubes the agent may act on, so sequences get somewhere; often enough outside and absent ones. */
const target = fc.oneof({ arbitrary: fc.constantFrom(...INSIDE), weight: 5 }, { arbitrary: fc.constantFrom(...NEW_NAMES), weight: 2 }, { arbitrary: fc.constantFrom(...OTHERS), weight: 3 });
/**
 * A target for what the policy decides: not `ai-outside`, an outside qube
 * carrying an elevation tag without the umbrella, which the tier lines
 * match (the documented residual install notes and doctor fails on).
 */
const policyTarget = target.filter((q) => q !== 'ai-outside');
const template = fc.oneof({ arbitrary: fc.constant('ai-tpl'), weight: 3 }, { arbitrary: target, weight: 1 });
const fresh = fc.constantFrom(...NEW_NAMES, 'work2');
const netvm = fc.constantFrom(undefined, 'none', 'inherit');

function newQube(name: string, n: string | undefined): Record<string, unknown> {
  return { name, ...(n === undefined ? {} : { netvm: n }) };
}

const json = (o: unknown): string => JSON.stringify(o);

type Made = Omit<Op, 'id' | 'service' | 'target'> & { readonly argument: string };

/** One operation's steps: how likely among the others, and what they look like. */
export interface Step {
  readonly weight: number;
  make(op: Operation): fc.Arbitrary<Op>;
}

/** A dom0 service step, at `@adminvm`. */
function dom0(weight: number, made: fc.Arbitrary<Made>): Step {
  return { weight, make: (op) => made.map(({ argument, ...m }) => ({ id: op.id, service: qrexecService(op, argument), target: '@adminvm', ...m })) };
}

/** A dom0 service step naming one qube as its argument. */
function onArgument(weight: number, payload = ''): Step {
  return dom0(weight, target.map((q) => ({ argument: q, payload, creates: null, names: [q] })));
}

/** A step the policy decides: the call targets the qube. */
function onTarget(weight: number, payload = ''): Step {
  return { weight, make: (op) => policyTarget.map((q) => ({ id: op.id, service: op.service, target: q, payload, creates: null, names: [q] })) };
}

const creation = (kind: 'template' | 'clone' | 'disposable', source: string, name: string, n: string | undefined): Made['creates'] => ({ name, source, kind, netvmNone: n === 'none' });

const EXEC = encodeExecRequest({ shell: 'true' }).toString('latin1');

/** A plan's command carries a timeout: a step never waits without one. */
const PLAN_EXEC = encodeExecRequest({ shell: 'true', timeoutSeconds: 5 }).toString('base64');

/** A plan of one or two steps on any target (it only waits for the operator): it names what it looks up, nothing it would create. */
const planStep = fc.oneof(
  target.map((q) => ({ step: { operation: 'start', argument: q, payload: '' }, names: [q] })),
  policyTarget.map((q) => ({ step: { operation: 'run', qube: q, argument: '', payload: PLAN_EXEC }, names: [q] })),
);

/** Every operation's steps, by operation id. */
export const STEPS: Readonly<Record<string, Step>> = {
  list: dom0(2, fc.constant({ argument: '', payload: '', creates: null, names: [] })),
  info: onArgument(6),
  state: onTarget(2),
  'firewall.get': onTarget(2),
  'device.list': dom0(2, fc.constant({ argument: '', payload: '', creates: null, names: [] })),
  'pool.figures': dom0(2, fc.constant({ argument: '', payload: '', creates: null, names: [] })),
  // a window of one second: rare, to keep the sequences quick
  events: dom0(1, fc.constant({ argument: '1', payload: '', creates: null, names: [] })),
  run: onTarget(2, EXEC),
  'file.write': onTarget(2, encodeWriteFileRequest({ path: '/root/x', content: 'x' }).toString('latin1')),
  'file.read': onTarget(2, encodeReadFileRequest({ path: '/etc/hostname' }).toString('latin1')),
  'dir.list': onTarget(1, encodeListDirRequest({ path: '/etc' }).toString('latin1')),
  'file.stat': onTarget(1, encodeStatRequest({ path: '/etc/hostname' }).toString('latin1')),
  'job.start': onTarget(1, EXEC),
  'job.output': onTarget(1, encodeJobOutputRequest({ job: '0123456789ab', stream: 'stdout', offset: 0, limit: 1024 }).toString('latin1')),
  'job.wait': onTarget(1, encodeJobWaitRequest({ job: '0123456789ab', timeoutSeconds: 0 }).toString('latin1')),
  'job.kill': onTarget(1, encodeJobKillRequest({ job: '0123456789ab', signal: 'TERM' }).toString('latin1')),
  'job.list': onTarget(1, encodeJobListRequest().toString('latin1')),
  // the destination is judged on the copy's second hop, from the source qube
  copy: {
    weight: 2,
    make: (op) =>
      fc.record({ source: policyTarget, to: target }).map(({ source, to }) => ({ id: op.id, service: qrexecService(op, to), target: source, payload: encodeCopyToRequest({ paths: ['/etc/hostname'] }).toString('latin1'), creates: null, names: [source] })),
  },
  // as a copy: the target is judged on the forward's own call, from the source qube
  'port.forward': {
    weight: 2,
    make: (op) =>
      fc.record({ source: policyTarget, to: target }).map(({ source, to }) => ({ id: op.id, service: qrexecService(op, to), target: source, payload: encodePortForwardRequest({ port: 8080, localPort: 9080 }).toString('latin1'), creates: null, names: [source] })),
  },
  start: onArgument(6),
  renew: dom0(2, target.map((q) => ({ argument: q, payload: json({}), creates: null, names: [q] }))),
  shutdown: onArgument(2),
  kill: onArgument(2),
  'firewall.set': onArgument(2, 'action=accept dsthost=192.0.2.1\naction=drop\n'),
  'firewall.reload': onTarget(2),
  pause: onTarget(2),
  unpause: onTarget(2),
  remove: onArgument(6),
  // mostly aimed at what an earlier remove of the sequence named (aimRestores): a name drawn apart rarely is one
  'tombstone.restore': dom0(
    4,
    fc.record({ q: target, aim: fc.option(fc.nat(7), { freq: 8 }) }).map(({ q, aim }) => ({ argument: q, payload: '', creates: null, names: [], restores: q, ...(aim === null ? {} : { aim }) })),
  ),
  'tombstone.list': dom0(1, fc.constant({ argument: '', payload: '', creates: null, names: [] })),
  checkpoint: onArgument(2),
  revert: onArgument(2),
  'property.set': dom0(
    6,
    fc
      .record({
        q: target,
        prop: fc.oneof(
          fc.record({ name: fc.constant('memory'), value: fc.integer({ min: 200, max: 4000 }) }),
          fc.record({ name: fc.constant('label'), value: fc.constantFrom('red', 'green') }),
          fc.record({ name: fc.constant('netvm'), value: fc.constant(null) }),
          fc.record({ name: fc.constant('autostart'), value: fc.boolean() }),
          fc.record({ name: fc.constant('default_dispvm'), value: target }),
        ),
      })
      .map(({ q, prop }) => ({ argument: q, payload: json(prop), creates: null, names: [q, ...(typeof prop.value === 'string' && prop.name === 'default_dispvm' ? [prop.value] : [])] })),
  ),
  'feature.set': dom0(6, target.map((q) => ({ argument: q, payload: json({ name: 'gui', value: '1' }), creates: null, names: [q] }))),
  create: dom0(3, fc.record({ template, name: fresh, netvm }).map(({ template: t, name, netvm: n }) => ({ argument: '', payload: json({ ...newQube(name, n), template: t }), creates: creation('template', t, name, n), names: [t] }))),
  'create.disptemplate': dom0(3, fc.record({ template, name: fresh, netvm }).map(({ template: t, name, netvm: n }) => ({ argument: '', payload: json({ ...newQube(name, n), template: t }), creates: creation('template', t, name, n), names: [t] }))),
  disposable: dom0(
    6,
    fc.record({ source: target, name: fresh, netvm, autoCleanup: fc.boolean() }).map(({ source, name, netvm: n, autoCleanup }) => ({ argument: source, payload: json({ ...newQube(name, n), autoCleanup }), creates: creation('disposable', source, name, n), names: [source] })),
  ),
  clone: dom0(6, fc.record({ source: target, name: fresh, netvm }).map(({ source, name, netvm: n }) => ({ argument: source, payload: json(newQube(name, n)), creates: creation('clone', source, name, n), names: [source] }))),
  'device.attach': dom0(3, fc.record({ q: target, backend: target }).map(({ q, backend }) => ({ argument: q, payload: json({ class: 'block', backend, port: 'sda' }), creates: null, names: [q, backend] }))),
  'device.detach': dom0(3, fc.record({ q: target, backend: target }).map(({ q, backend }) => ({ argument: q, payload: json({ class: 'block', backend, port: 'sda' }), creates: null, names: [q, backend] }))),
  'plan.submit': dom0(
    // often enough that the sequences with the gate on answer a plan at scale 1
    5,
    fc.array(planStep, { minLength: 1, maxLength: 2 }).map((steps) => ({ argument: '', payload: json({ purpose: 'sequence', steps: steps.map((s) => s.step) }), creates: null, names: steps.flatMap((s) => s.names) })),
  ),
  'plan.status': dom0(1, fc.constantFrom('1', '2').map((id) => ({ argument: id, payload: '', creates: null, names: [] }))),
};

/**
 * The sequence with each aimed restore naming what an earlier remove of the
 * same principal named (whether or not it went through), when there is one;
 * otherwise it keeps its own drawn name.
 */
export function aimRestores(ops: readonly Op[]): Op[] {
  const removed = new Map<string, string[]>();
  return ops.map((op) => {
    const names = removed.get(op.principal ?? '') ?? [];
    removed.set(op.principal ?? '', names);
    if (op.id === 'remove' && op.names[0] !== undefined) names.push(op.names[0]);
    if (op.id !== 'tombstone.restore' || op.aim === undefined || names.length === 0) return op;
    const name = names[op.aim % names.length] as string;
    return { ...op, service: `${op.service.slice(0, op.service.indexOf('+'))}+${name}`, restores: name };
  });
}

/** One line per operation of the model without a step. */
export function sequencesGaps(ops: readonly Operation[], steps: Readonly<Record<string, Step>> = STEPS): string[] {
  return gapsIn(ops, steps, 'sequence step');
}

/** A step of a sequence: any operation of `ops`, or the operator switching the mode. */
export function opArbitrary(ops: readonly Operation[] = OPERATIONS): fc.Arbitrary<Op> {
  const steps = ops.map((op) => ({ arbitrary: (STEPS[op.id] as Step).make(op), weight: (STEPS[op.id] as Step).weight }));
  return fc.oneof(...steps, { arbitrary: fc.constant({ id: SWITCH_MODE, service: SWITCH_MODE, target: '', payload: '', creates: null, names: [] }), weight: 6 });
}

/** An inside qube's network path: none, the egress qube, the operator's firewall, or the global default (the firewall). */
export type NetPlan = 'none' | 'egress' | 'operator' | 'default';

/** How a generated fleet differs from the attack fleet: a tier and a netvm per inside qube, restriction and propagating tags. */
export interface FleetPlan {
  readonly tiers: Readonly<Record<string, '' | 'exec' | 'net' | 'full'>>;
  readonly nets: Readonly<Record<string, NetPlan>>;
  readonly locked: readonly string[];
  readonly kept: readonly string[];
}

export const fleetPlanArbitrary: fc.Arbitrary<FleetPlan> = fc.record({
  tiers: fc.record(Object.fromEntries(INSIDE.map((q) => [q, fc.constantFrom('' as const, 'exec' as const, 'net' as const, 'full' as const)])) as Record<string, fc.Arbitrary<'' | 'exec' | 'net' | 'full'>>),
  nets: fc.record(Object.fromEntries(INSIDE.map((q) => [q, fc.constantFrom<NetPlan>('none', 'egress', 'operator', 'default')])) as Record<string, fc.Arbitrary<NetPlan>>),
  locked: fc.subarray([...INSIDE]),
  kept: fc.subarray([...INSIDE]),
});

export interface SettingsPlan {
  readonly mode: 'least-privilege' | 'compat';
  readonly birthCeiling: 'read' | 'exec' | 'net' | 'full';
  /** Room in the disk budget beyond the fleet's footprint, in GiB. */
  readonly roomGiB: number;
}

export const settingsPlanArbitrary: fc.Arbitrary<SettingsPlan> = fc.record({
  mode: fc.constantFrom('least-privilege' as const, 'compat' as const),
  birthCeiling: fc.constantFrom('read' as const, 'exec' as const, 'net' as const, 'full' as const),
  roomGiB: fc.integer({ min: 0, max: 12 }),
});
