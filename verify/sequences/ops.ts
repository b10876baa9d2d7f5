/**
 * The agent operations a model-based sequence is made of: every dom0
 * service, with arguments drawn from visible, outside, absent and
 * just-created qubes, as fast-check arbitraries (so a failing sequence
 * shrinks).
 */
import fc from 'fast-check';

/** Qubes of the fleet inside the umbrella (their tiers are generated). */
export const INSIDE = ['ai-box', 'ai-peer', 'ai-read', 'ai-execbox', 'ai-dvm'] as const;
/** Names a sequence may create; a later step may name them. */
export const NEW_NAMES = ['ai-n1', 'ai-n2', 'ai-n3'] as const;
/** Every name a step may act on: inside, the umbrella's template and egress, outside, the sink, absent, created. */
export const TARGETS = [...INSIDE, 'ai-tpl', 'ai-egress', 'vault', 'ai-outside', 'debian', 'sys-firewall', 'drop', 'mcp-control', 'ai-nothing', ...NEW_NAMES] as const;

export interface Op {
  /** `qmcp.X` or `qmcp.X+ARG`; `operator:switch-mode` is the operator switching the mode in dom0 mid-sequence. */
  readonly service: string;
  readonly payload: string;
  /** The qube a success creates. */
  readonly creates: { readonly name: string; readonly source: string; readonly kind: 'template' | 'clone' | 'disposable'; readonly netvmNone: boolean } | null;
  /** The qubes the call names (argument, template, backend, property value). */
  readonly names: readonly string[];
}

const OTHERS = TARGETS.filter((t) => !(INSIDE as readonly string[]).includes(t) && !(NEW_NAMES as readonly string[]).includes(t));
/** Mostly qubes the agent may act on, so sequences get somewhere; often enough outside and absent ones. */
/** Not an agent call: the operator switches between compat and least-privilege (settings and policy together). */
export const SWITCH_MODE = 'operator:switch-mode';

const target = fc.oneof({ arbitrary: fc.constantFrom(...INSIDE), weight: 5 }, { arbitrary: fc.constantFrom(...NEW_NAMES), weight: 2 }, { arbitrary: fc.constantFrom(...OTHERS), weight: 3 });
const template = fc.oneof({ arbitrary: fc.constant('ai-tpl'), weight: 3 }, { arbitrary: target, weight: 1 });
const fresh = fc.constantFrom(...NEW_NAMES, 'work2');
const netvm = fc.constantFrom(undefined, 'none', 'inherit');

function newQube(name: string, n: string | undefined): Record<string, unknown> {
  return { name, ...(n === undefined ? {} : { netvm: n }) };
}

const json = (o: unknown): string => JSON.stringify(o);

export const opArbitrary: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ template, name: fresh, netvm, disp: fc.boolean() }).map(({ template, name, netvm: n, disp }) => ({
    service: disp ? 'qmcp.CreateDispTemplate' : 'qmcp.Create',
    payload: json({ ...newQube(name, n), template }),
    creates: { name, source: template, kind: 'template' as const, netvmNone: n === 'none' },
    names: [template],
  })),
  fc.record({ source: target, name: fresh, netvm }).map(({ source, name, netvm: n }) => ({
    service: `qmcp.Clone+${source}`,
    payload: json(newQube(name, n)),
    creates: { name, source, kind: 'clone' as const, netvmNone: n === 'none' },
    names: [source],
  })),
  fc.record({ source: target, name: fresh, netvm, autoCleanup: fc.boolean() }).map(({ source, name, netvm: n, autoCleanup }) => ({
    service: `qmcp.CreateDisposable+${source}`,
    payload: json({ ...newQube(name, n), autoCleanup }),
    creates: { name, source, kind: 'disposable' as const, netvmNone: n === 'none' },
    names: [source],
  })),
  ...(['Remove', 'Start', 'Info'] as const).map((s) => target.map((q) => ({ service: `qmcp.${s}+${q}`, payload: '', creates: null, names: [q] }))),
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
    .map(({ q, prop }) => ({ service: `qmcp.SetProperty+${q}`, payload: json(prop), creates: null, names: [q, ...(typeof prop.value === 'string' && prop.name === 'default_dispvm' ? [prop.value] : [])] })),
  target.map((q) => ({ service: `qmcp.SetFeature+${q}`, payload: json({ name: 'gui', value: '1' }), creates: null, names: [q] })),
  fc.record({ q: target, backend: target, attach: fc.boolean() }).map(({ q, backend, attach }) => ({
    service: `qmcp.${attach ? 'DeviceAttach' : 'DeviceDetach'}+${q}`,
    payload: json({ class: 'block', backend, port: 'sda' }),
    creates: null,
    names: [q, backend],
  })),
  fc.constantFrom('qmcp.List', 'qmcp.PoolFigures', 'qmcp.DeviceList').map((service) => ({ service, payload: '', creates: null, names: [] })),
  fc.constant({ service: SWITCH_MODE, payload: '', creates: null, names: [] }),
);

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
