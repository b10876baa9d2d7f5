/**
 * The two machines of a noninterference pair: one base fleet (the agent's
 * world and an outside world), each machine with its own edits outside the
 * agent's world (some of the qubes it adds are tombstones not the agent's). The agent's world is the umbrella, the sinks and its own
 * tombstones; an edit never touches them, never gives an outside qube a
 * controlled tag, and never makes an outside qube depend on an umbrella one
 * (that is the accepted residual "a remove fails": SPEC §4.1).
 */
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Qubesd } from '../../src/dom0/qubesd.js';
import { operation } from '../../src/shared/model/capabilities.js';
import type { Tier } from '../../src/shared/model/capabilities.js';
import type { Fleet, FleetQube } from '../../src/sim/fleet.js';
import { fleetState } from '../../src/sim/fleet.js';
import { dom0Root, envServiceMode, startSimHost } from '../../src/sim/host.js';
import type { SimHost } from '../../src/sim/host.js';
import { qubesdPaths } from '../../src/sim/qubesd/index.js';
import { writeStateFile } from '../../src/sim/qubesd/state.js';
import { BASE_SETTINGS, GiB, PRINCIPAL, TAGS, attackFleet, prng } from '../malformed/host.js';
import { IDLE_MS, startAnswerer } from '../gate/answerer.js';
import type { Answerer } from '../gate/answerer.js';
import type { GateChoice } from '../gate/settings.js';
import { gateSetting } from '../gate/settings.js';
import { hangBoundMs } from '../hang-bound.js';
import { UNSET_SETTINGS } from './actionable.js';
import { existenceGateRunner, serveWeakened } from './weakened.js';
import type { WeakenedOperation, WeakenedServing } from './weakened.js';
import { startResident } from '../../src/dom0/resident/server.js';
import type { Resident } from '../../src/dom0/resident/server.js';

type Rand = ReturnType<typeof prng>;

/**
 * Names an outside qube may take, some inside the reserved prefix. A create
 * never names one of them: a name inside the prefix held outside the
 * umbrella makes a create refuse, the accepted residual of SPEC §4.1.
 */
export const OUTSIDE_NAMES = ['work', 'personal', 'untrusted', 'sys-usb', 'banking', 'ai-secret', 'ai-hidden', 'ai-box-old', 'ai-fresh9', 'disp1234'] as const;
/** Outside qubes of the base fleet an edit may change, stop or start (none is referenced from inside). */
export const BASE_OUTSIDE = ['vault', 'ops-dvm', 'ai-outside', 'debian', 'sys-firewall'] as const;
/** Base outside qubes nothing depends on, which an edit may delete. */
const REMOVABLE = ['vault', 'ai-outside'] as const;
/**
 * Added outside qubes that are tombstones of no concern to the agent: the
 * operator's own marking (no owner tag) and another principal's removal.
 * The agent's list and restore must answer as if they were absent.
 */
export const OUTSIDE_TOMBSTONES: Readonly<Record<string, readonly string[]>> = {
  'ai-box-old': ['qmcp-tombstone', 'qmcp-tombstone-20261101T120000Z'],
  'ai-hidden': ['qmcp-tombstone', 'qmcp-tombstone-20261102T120000Z', 'qmcp-owner-other-control'],
};
/** Operator tags: never the umbrella, a sink, an elevation tag, or a qmcp marker (tombstones above aside). */
const OPERATOR_TAGS = ['work', 'op-keep', 'audio', 'backup', 'vpn-only', 'created-by-dom0', 'ai-lock'] as const;
const LABELS = ['red', 'orange', 'yellow', 'green', 'gray', 'blue', 'purple', 'black'] as const;

/**
 * Two more principals of the pairs with several (docs/principals.md),
 * listed before the agent's, so a dom0 that serves every caller with the
 * first principal's settings serves the agent another world.
 */
export const OTHER_PRINCIPALS: readonly Record<string, unknown>[] = [
  { principal: 'other-control', namePrefix: 'oc-', tags: { umbrella: 'oc-managed', exec: 'oc-exec', net: 'oc-net', full: 'oc-full', sink: 'oc-dump' }, mode: 'least-privilege', poolCapBytes: 100 * GiB, privateCapBytes: 4 * GiB },
  { principal: 'third-control', namePrefix: 'tc-', tags: { umbrella: 'tc-managed', exec: 'tc-exec', net: 'tc-net', full: 'tc-full', sink: 'tc-dump' }, mode: 'compat', poolCapBytes: 100 * GiB, privateCapBytes: 4 * GiB },
];
/** Their worlds in the base fleet of such a pair: each principal qube, a tiered qube, a sink and a tombstone. */
const OTHER_WORLDS: readonly FleetQube[] = [
  { name: 'other-control', klass: 'AppVM', template: 'debian', label: 'purple', properties: { netvm: null } },
  { name: 'oc-box', klass: 'AppVM', template: 'debian', label: 'yellow', tags: ['oc-managed', 'oc-exec'], properties: { netvm: null } },
  { name: 'oc-dump', klass: 'AppVM', template: 'debian', label: 'gray', tags: ['oc-dump'], properties: { netvm: null } },
  { name: 'third-control', klass: 'AppVM', template: 'debian', label: 'purple', properties: { netvm: null } },
  { name: 'tc-box', klass: 'AppVM', template: 'debian', label: 'orange', tags: ['tc-managed', 'tc-full'], properties: { netvm: 'sys-firewall' } },
  { name: 'tc-gone', klass: 'AppVM', template: 'debian', label: 'red', tags: ['tc-managed', 'qmcp-tombstone', 'qmcp-tombstone-20261103T120000Z', 'qmcp-owner-third-control'], properties: { netvm: null } },
];
/** Tags an added qube of such a pair may carry instead of the operator's: it is then in another principal's world. */
const OTHER_WORLD_TAGS: readonly (readonly string[])[] = [['oc-managed'], ['oc-managed', 'oc-full'], ['oc-dump'], ['tc-managed', 'tc-exec'], ['tc-dump']];
/** Machine B's own qube in the first other world: the machines of such a pair always differ there. */
export const OTHER_WORLD_ON_B: readonly Edit[] = [
  { kind: 'add', qube: { name: 'oc-extra', klass: 'AppVM', template: 'debian', label: 'yellow', tags: ['oc-managed', 'oc-exec'], properties: { netvm: null } } },
];

/** Whether a qube's tags put it in another principal's world. */
export function inOtherWorld(tags: readonly string[]): boolean {
  return tags.some((t) => /^(oc|tc)-/.test(t) || t === 'qmcp-owner-other-control' || t === 'qmcp-owner-third-control');
}

export type Power = 'Running' | 'Paused';

/** One difference from the base, outside the agent's world. */
export type Edit =
  | { readonly kind: 'add'; readonly qube: FleetQube }
  | { readonly kind: 'change'; readonly name: string; readonly label: string; readonly tags: readonly string[]; readonly memory: number; readonly features: Readonly<Record<string, string>> }
  | { readonly kind: 'delete'; readonly name: string }
  | { readonly kind: 'power'; readonly name: string; readonly power: Power }
  | { readonly kind: 'devices'; readonly backend: string; readonly klass: 'block' | 'usb' | 'mic'; readonly ports: readonly string[] };

/**
 * The base fleet: the attack fleet, with its one outside qube that carried
 * an elevation tag given an operator tag instead, and one qube of the
 * agent's whose private volume is over the per-qube cap (a clone of it is
 * over the budget) and whose start the operator holds (a start of it fails).
 */
export function baseFleet(): Fleet {
  const big = { name: 'ai-big', klass: 'AppVM', template: 'ai-tpl', label: 'blue', tags: [TAGS.umbrella, TAGS.full], properties: { netvm: null }, features: { 'prohibit-start': 'operator hold' }, volumes: { private: 8 * GiB } } as const;
  const f = attackFleet([{ ...big, tags: [...big.tags] }]);
  return {
    ...f,
    qubes: f.qubes.map((q) => (q.name === 'ai-outside' ? { ...q, tags: ['op-keep'] } : q)),
    devices: { block: { 'ai-peer': [{ port: 'sda', devid: 'disk:1', description: 'agent disk' }] } },
  };
}

/**
 * Machine A's own outside qube, running: what every running qube leaves of
 * the host's memory then differs between the machines of every pair, and
 * by an amount (not a multiple of 100 MiB, as every other qube's memory is)
 * that no mix of the other side's running qubes makes up.
 */
export const RUNNING_ON_A: readonly Edit[] = [
  { kind: 'add', qube: { name: 'op-running', klass: 'AppVM', template: 'debian', label: 'gray', properties: { memory: 450, netvm: null } } },
  { kind: 'power', name: 'op-running', power: 'Running' },
];

function someOf<T>(r: Rand, xs: readonly T[], max: number): T[] {
  return r.shuffle([...xs]).slice(0, r.int(max + 1));
}

/** Up to `max` edits for one machine; names the machine adds come from OUTSIDE_NAMES, and with `worlds` may be in another principal's world. */
export function generateEdits(r: Rand, max: number, worlds = false): Edit[] {
  const edits: Edit[] = [];
  const added: string[] = [];
  const deleted = new Set<string>();
  const n = 1 + r.int(max);
  for (let i = 0; i < n; i++) {
    const kind = r.pick(['add', 'add', 'change', 'delete', 'power', 'power', 'devices'] as const);
    const existing = [...BASE_OUTSIDE.filter((q) => !deleted.has(q)), ...added];
    if (kind === 'add') {
      const free = OUTSIDE_NAMES.filter((q) => !added.includes(q));
      if (free.length === 0) continue;
      const name = r.pick(free);
      const klass = r.pick(['AppVM', 'AppVM', 'StandaloneVM', 'TemplateVM'] as const);
      const properties: FleetQube['properties'] = { memory: 200 + 100 * r.int(20), netvm: r.pick([null, 'sys-firewall']) };
      if (klass === 'AppVM' && r.int(3) === 0) properties['template_for_dispvms'] = true;
      if (r.int(4) === 0) properties['provides_network'] = true;
      if (r.int(4) === 0) properties['autostart'] = true;
      edits.push({
        kind,
        qube: {
          name,
          klass,
          ...(klass === 'AppVM' ? { template: 'debian' } : {}),
          label: r.pick(LABELS),
          tags: worlds && !OUTSIDE_TOMBSTONES[name] && r.int(2) === 0 ? [...r.pick(OTHER_WORLD_TAGS)] : [...someOf(r, OPERATOR_TAGS, 3), ...(OUTSIDE_TOMBSTONES[name] ?? [])],
          properties,
          ...(r.int(2) === 0 ? { features: { gui: '1', 'menu-items': 'xterm.desktop' } } : {}),
        },
      });
      added.push(name);
    } else if (kind === 'change') {
      const name = r.pick(BASE_OUTSIDE.filter((q) => !deleted.has(q)));
      edits.push({ kind, name, label: r.pick(LABELS), tags: someOf(r, OPERATOR_TAGS, 3), memory: 300 + 100 * r.int(10), features: r.int(2) === 0 ? { secret: 'x' } : {} });
    } else if (kind === 'delete') {
      const name = r.pick(REMOVABLE);
      if (deleted.has(name) || edits.some((e) => 'name' in e && e.name === name)) continue;
      edits.push({ kind, name });
      deleted.add(name);
    } else if (kind === 'power') {
      const name = r.pick(existing);
      if (edits.some((e) => e.kind === 'power' && e.name === name)) continue;
      edits.push({ kind, name, power: r.pick(['Running', 'Running', 'Paused'] as const) });
    } else {
      edits.push({ kind, backend: r.pick(existing), klass: r.pick(['block', 'usb', 'mic'] as const), ports: someOf(r, ['sdb', '2-1', 'mic', 'xvdi'], 3) });
    }
  }
  // a deleted qube is neither started nor a backend
  return edits.filter((e) => !((e.kind === 'power' && deleted.has(e.name)) || (e.kind === 'devices' && deleted.has(e.backend))));
}

/** The fleet one machine starts from: the base (with the other principals' worlds, for `others`) with its edits applied. */
export function fleetOf(edits: readonly Edit[], others = false): Fleet {
  const base = baseFleet();
  let qubes = [...base.qubes, ...(others ? OTHER_WORLDS : [])];
  const devices: NonNullable<Fleet['devices']> = JSON.parse(JSON.stringify(base.devices ?? {})) as NonNullable<Fleet['devices']>;
  for (const e of edits) {
    if (e.kind === 'add') qubes.push(e.qube);
    else if (e.kind === 'delete') qubes = qubes.filter((q) => q.name !== e.name);
    else if (e.kind === 'change') {
      qubes = qubes.map((q) =>
        q.name === e.name ? { ...q, label: e.label, tags: [...new Set([...(q.tags ?? []), ...e.tags])], properties: { ...q.properties, memory: e.memory }, features: { ...q.features, ...e.features } } : q,
      );
    } else if (e.kind === 'devices') {
      const byBackend = (devices[e.klass] ??= {});
      byBackend[e.backend] = e.ports.map((port, i) => ({ port, devid: `${e.klass}:${e.backend}:${i}`, description: `${e.backend} ${port}` }));
    }
  }
  return { ...base, qubes, devices };
}

/** A uuid fixed by the seed and the name, so a qube both machines hold has the same one and a run repeats. */
export function uuidOf(seed: number, name: string): string {
  const h = createHash('sha256').update(`${seed}:${name}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

export interface Machine {
  readonly label: 'A' | 'B';
  readonly edits: readonly Edit[];
  readonly host: SimHost;
  readonly dir: string;
  /** Every qube of the machine outside the agent’s world, but dom0. */
  readonly outside: readonly string[];
  /** uuid of every qube, by name. */
  readonly uuids: ReadonlyMap<string, string>;
  /** With the gate on: the operator answering the machine's requests and dialogs. */
  readonly answerer?: Answerer;
  /** The qubes in other principals' worlds, their principal qubes included (pairs with several principals). */
  readonly otherWorlds: readonly string[];
  /** The front ends serving the weakened services, in this process. */
  readonly weakened: readonly Resident[];
}

export interface PairSettings {
  readonly mode: 'least-privilege' | 'compat';
  readonly birthCeiling: Tier;
  /** The action gate on: what asks, and the seed both machines' answerers decide by. */
  readonly gate?: { readonly asks: GateChoice; readonly seed: number };
  /** The budget, the egress qube and the limits of one qube unset, the lease bounded (actionable.ts). */
  readonly unset?: boolean;
  /** Two more principals, listed before the agent's, with worlds of their own (OTHER_PRINCIPALS). */
  readonly others?: boolean;
}

/** The agent's world of the base fleet, which no edit touches. */
export const WORLD = new Set(baseFleet().qubes.filter((q) => (q.tags ?? []).some((t) => t === 'ai-managed' || t === 'ai-dump')).map((q) => q.name));

/** What a weakened variant installs into both machines of a pair. */
export interface MachineVariant {
  /** A policy file read before qmcp's own (a leaky line). */
  readonly extraPolicy?: string;
  /** Operations whose dom0 service runs weakened (weakened.ts) in place of the real one. */
  readonly weakened?: readonly WeakenedOperation[];
  /** Operations whose dom0 service runs with a scope check that asks whether a qube exists before the gate asks the operator. */
  readonly existenceGate?: readonly string[];
  /** Operations whose dom0 service serves every caller with the first principal's settings (its world), under the caller's name. */
  readonly firstsSettings?: readonly string[];
}

/** Starts one machine: its state written with fixed uuids, qmcp installed, outside power states applied by dom0. */
export async function startMachine(label: 'A' | 'B', edits: readonly Edit[], seed: number, settings: PairSettings, variant: MachineVariant = {}): Promise<Machine> {
  const dir = await mkdtemp(join(tmpdir(), `qmcp-ni-${label}-`));
  const weakened: Resident[] = [];
  try {
    const state = fleetState(fleetOf(edits, settings.others));
    for (const vm of state.vms) if (vm.klass !== 'AdminVM') vm.uuid = uuidOf(seed, vm.name);
    writeStateFile(qubesdPaths(dir).state, state, false);
    if (variant.extraPolicy !== undefined) {
      const policyDir = join(dom0Root(dir), 'etc', 'qubes', 'policy.d');
      await mkdir(policyDir, { recursive: true });
      await writeFile(join(policyDir, '10-weakened.policy'), variant.extraPolicy);
    }
    const settingsFile = join(dir, 'settings.json');
    const { gate, unset, others, ...plain } = settings;
    const own = { principal: PRINCIPAL, tags: TAGS, ...BASE_SETTINGS, ...plain, ...(unset ? UNSET_SETTINGS : {}), ...(gate ? { gate: gateSetting(gate.asks) } : {}) };
    await writeFile(settingsFile, JSON.stringify(others ? { principals: [...OTHER_PRINCIPALS, own] } : own));
    // without the gate on, an ask the principal's calls raise (an allowed copy into an untiered qube) times out as a deny;
    // with it, the answerer answers every one, and a timeout would race it
    // the dom0 services from the resident process unless the run asks for a process per call
    const host = await startSimHost({ dir, install: true, settingsFile, askTimeoutMs: gate ? hangBoundMs(120_000) : 200, durable: false, stateAtClose: true, serviceMode: envServiceMode() ?? 'resident' });
    // qrexec looks in /usr/local/etc/qubes-rpc before /etc/qubes-rpc: a weakened service's socket there is found before
    // the installed executable or resident socket; served in this process, as a resident process serves (no process per call)
    const localRpc = join(dom0Root(dir), 'usr', 'local', 'etc', 'qubes-rpc');
    const serving = new Map<string, WeakenedServing>();
    for (const id of variant.weakened ?? []) serving.set(id, {});
    for (const id of variant.existenceGate ?? []) serving.set(id, { runner: existenceGateRunner() });
    for (const id of variant.firstsSettings ?? []) serving.set(id, { firsts: 'settings' });
    if (serving.size > 0) await mkdir(localRpc, { recursive: true });
    for (const [id, how] of serving) {
      const resident = startResident({ serve: (c) => serveWeakened(dom0Root(dir), host.qubesd.socketPath, c, how), log: () => undefined });
      weakened.push(resident);
      await resident.listen({ path: join(localRpc, operation(id).service) });
    }
    const dom0 = new Qubesd(host.qubesd.socketPath);
    for (const e of edits) {
      if (e.kind !== 'power') continue;
      await dom0.call('admin.vm.Start', e.name);
      if (e.power === 'Paused') await dom0.call('admin.vm.Pause', e.name);
    }
    const uuids = new Map(state.vms.map((v) => [v.name, v.uuid]));
    const outside = state.vms.filter((v) => v.klass !== 'AdminVM' && !WORLD.has(v.name)).map((v) => v.name);
    const answerer = gate ? startAnswerer({ root: dom0Root(dir), askSocket: host.router.askSocket, qubesdSocket: host.qubesd.socketPath, seed: gate.seed, idleMs: IDLE_MS }) : undefined;
    const otherWorlds = state.vms.filter((v) => OTHER_PRINCIPALS.some((p) => p['principal'] === v.name) || inOtherWorld(v.tags)).map((v) => v.name);
    return { label, edits, host, dir, outside, uuids, otherWorlds, weakened, ...(answerer ? { answerer } : {}) };
  } catch (err) {
    await Promise.all(weakened.map((r) => r.stop()));
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

export async function stopMachine(m: Machine): Promise<void> {
  await m.answerer?.stop();
  // the weakened services' waiting calls withdrawn before the host they call goes
  await Promise.all(m.weakened.map((r) => r.stop()));
  await m.host.close();
  await rm(m.dir, { recursive: true, force: true });
}
