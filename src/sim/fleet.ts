/**
 * Fleet files (SPEC §10): the qubes a new simulated host starts with.
 * `{"properties"?: {...}, "qubes": [{"name", "klass", "template"?, "label"?,
 * "tags"?, "properties"?, "features"?, "volumes"?}]}`; dom0 is implicit.
 * `volumes` sets volume sizes in bytes (`root`, `private`, `volatile`).
 */
import { readFileSync } from 'node:fs';
import { qubeNameProblem } from '../shared/names.js';
import { SimApp } from './qubesd/app.js';
import { globalPropDefs, LABELS, vmPropDefs } from './qubesd/properties.js';
import type { PropDef } from './qubesd/properties.js';
import type { HostState, Klass, PropValue, VmState } from './qubesd/state.js';
import { demoFleet } from './demo-fleet.js';
import { QmcpError } from '../shared/errors.js';

export type FleetValue = string | number | boolean | null;

export interface FleetQube {
  name: string;
  klass: Exclude<Klass, 'AdminVM'>;
  template?: string;
  label?: string;
  tags?: string[];
  properties?: Record<string, FleetValue>;
  features?: Record<string, string>;
  volumes?: Partial<Record<FleetVolume, number>>;
}

const FLEET_VOLUMES = ['root', 'private', 'volatile'] as const;
export type FleetVolume = (typeof FLEET_VOLUMES)[number];

export interface FleetDevice {
  port: string;
  devid: string;
  description?: string;
  /** Qubes' 7-character interface codes, concatenated (e.g. 'b******'). */
  interfaces?: string;
}

export interface Fleet {
  properties?: Record<string, FleetValue>;
  qubes: FleetQube[];
  /** Simulator extension: devices each backend exposes, by class then backend name. */
  devices?: Record<string, Record<string, FleetDevice[]>>;
}

export class FleetError extends QmcpError {
  readonly code = 'ERR_QMCP_SIM_FLEET';
}

const FLEET_KLASSES = ['AppVM', 'DispVM', 'StandaloneVM', 'TemplateVM'];
const TAG = /^[a-zA-Z0-9_-]+$/;
const FEATURE = /^[a-zA-Z0-9_.-]+$/;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function checkValue(where: string, def: PropDef, v: unknown, names: ReadonlySet<string>): PropValue {
  if (def.readOnly) throw new FleetError(`${where}: property ${def.name} is read-only`);
  const bad = (): never => {
    throw new FleetError(`${where}: property ${def.name} wants a ${def.type}, got ${JSON.stringify(v)}`);
  };
  switch (def.type) {
    case 'bool':
      return typeof v === 'boolean' ? v : bad();
    case 'int':
      return typeof v === 'number' && Number.isInteger(v) ? v : bad();
    case 'label':
      if (typeof v !== 'string' || !LABELS.some((l) => l.name === v)) bad();
      return v as string;
    case 'vm':
      if (v === null || v === '') return null;
      if (typeof v !== 'string') bad();
      if (!names.has(v as string)) throw new FleetError(`${where}: property ${def.name} names unknown qube ${String(v)}`);
      return v as string;
    default:
      return typeof v === 'string' ? v : bad();
  }
}

/** Checks a parsed fleet file; throws FleetError naming the first problem. */
export function validateFleet(raw: unknown): Fleet {
  if (!isRecord(raw)) throw new FleetError('fleet must be a JSON object');
  for (const k of Object.keys(raw)) if (!['properties', 'qubes', 'devices'].includes(k)) throw new FleetError(`unknown fleet key ${k}`);
  if (!Array.isArray(raw['qubes'])) throw new FleetError('fleet needs a "qubes" array');
  if (raw['properties'] !== undefined && !isRecord(raw['properties'])) throw new FleetError('"properties" must be an object');
  const names = new Set<string>(['dom0']);
  const qubes = raw['qubes'] as unknown[];
  qubes.forEach((q, i) => {
    if (!isRecord(q)) throw new FleetError(`qubes[${i}] must be an object`);
    const name = q['name'];
    if (typeof name !== 'string') throw new FleetError(`qubes[${i}] needs a "name"`);
    const problem = qubeNameProblem(name);
    if (problem) throw new FleetError(`qubes[${i}] ${name}: ${problem}`);
    if (names.has(name)) throw new FleetError(`qube ${name} is listed twice (dom0 is implicit)`);
    names.add(name);
  });
  const byName = new Map(qubes.map((q) => [(q as Record<string, unknown>)['name'] as string, q as Record<string, unknown>]));
  for (const q of byName.values()) {
    const name = q['name'] as string;
    for (const k of Object.keys(q)) {
      if (!['name', 'klass', 'template', 'label', 'tags', 'properties', 'features', 'volumes'].includes(k)) {
        throw new FleetError(`${name}: unknown key ${k}`);
      }
    }
    const klass = q['klass'];
    if (typeof klass !== 'string' || !FLEET_KLASSES.includes(klass)) {
      throw new FleetError(`${name}: klass must be one of ${FLEET_KLASSES.join(', ')}`);
    }
    const template = q['template'];
    if (klass === 'AppVM' || klass === 'DispVM') {
      if (typeof template !== 'string') throw new FleetError(`${name}: a ${klass} needs a template`);
      const t = byName.get(template);
      // as Qubes: a disposable's template is an AppVM or StandaloneVM with template_for_dispvms
      const wanted = klass === 'DispVM' ? ['AppVM', 'StandaloneVM'] : ['TemplateVM'];
      if (!t || !wanted.includes(t['klass'] as string)) throw new FleetError(`${name}: template ${template} is not a ${wanted.join(' or ')} in the fleet`);
      if (klass === 'DispVM' && (t['properties'] as Record<string, unknown> | undefined)?.['template_for_dispvms'] !== true) {
        throw new FleetError(`${name}: template ${template} does not have template_for_dispvms`);
      }
    } else if (template !== undefined) {
      throw new FleetError(`${name}: a ${klass} has no template`);
    }
    const label = q['label'];
    if (label !== undefined && (typeof label !== 'string' || !LABELS.some((l) => l.name === label))) {
      throw new FleetError(`${name}: unknown label ${JSON.stringify(label)}`);
    }
    const tags = q['tags'];
    if (tags !== undefined && (!Array.isArray(tags) || !tags.every((t) => typeof t === 'string' && TAG.test(t)))) {
      throw new FleetError(`${name}: tags must be a list of names of letters, digits, - and _`);
    }
    const features = q['features'];
    if (features !== undefined) {
      if (!isRecord(features)) throw new FleetError(`${name}: features must be an object`);
      for (const [f, v] of Object.entries(features)) {
        if (!FEATURE.test(f)) throw new FleetError(`${name}: bad feature name ${f}`);
        if (typeof v !== 'string' || !/^[\x20-\x7e]*$/.test(v)) throw new FleetError(`${name}: feature ${f} must be a printable ASCII string`);
      }
    }
    const volumes = q['volumes'];
    if (volumes !== undefined) {
      if (!isRecord(volumes)) throw new FleetError(`${name}: volumes must be an object`);
      for (const [v, size] of Object.entries(volumes)) {
        if (!(FLEET_VOLUMES as readonly string[]).includes(v)) throw new FleetError(`${name}: unknown volume ${v} (${FLEET_VOLUMES.join(', ')})`);
        if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 1024 * 1024) throw new FleetError(`${name}: volume ${v} needs a size in bytes of at least 1 MiB`);
      }
    }
    const props = q['properties'];
    if (props !== undefined) {
      if (!isRecord(props)) throw new FleetError(`${name}: properties must be an object`);
      const defs = vmPropDefs(klass as Klass);
      for (const [p, v] of Object.entries(props)) {
        const def = defs.get(p);
        if (!def || p === 'name' || p === 'template' || p === 'label') throw new FleetError(`${name}: no settable property ${p} on a ${klass}`);
        checkValue(name, def, v, names);
      }
    }
  }
  const devices = raw['devices'];
  if (devices !== undefined) {
    if (!isRecord(devices)) throw new FleetError('"devices" must be an object');
    for (const [cls, backends] of Object.entries(devices)) {
      if (!['block', 'mic', 'pci', 'usb'].includes(cls)) throw new FleetError(`unknown device class ${cls}`);
      if (!isRecord(backends)) throw new FleetError(`devices.${cls} must be an object`);
      for (const [be, list] of Object.entries(backends)) {
        if (!names.has(be)) throw new FleetError(`devices.${cls}: unknown backend ${be}`);
        const ok = (d: unknown): boolean =>
          isRecord(d) &&
          typeof d['port'] === 'string' && /^[A-Za-z0-9_.-]+$/.test(d['port']) &&
          typeof d['devid'] === 'string' && /^[A-Za-z0-9_.:-]+$/.test(d['devid']) &&
          (d['description'] === undefined || (typeof d['description'] === 'string' && /^[\x20-\x7e]*$/.test(d['description']) && !d['description'].includes("'"))) &&
          (d['interfaces'] === undefined || (typeof d['interfaces'] === 'string' && /^([a-z*][0-9a-f*]{6})*$/.test(d['interfaces'])));
        if (!Array.isArray(list) || !list.every(ok)) throw new FleetError(`devices.${cls}.${be}: each device needs port, devid, optional description and interfaces`);
      }
    }
  }
  const gprops = (raw['properties'] ?? {}) as Record<string, unknown>;
  for (const [p, v] of Object.entries(gprops)) {
    const def = globalPropDefs.get(p);
    if (!def) throw new FleetError(`no global property ${p}`);
    checkValue('global', def, v, names);
  }
  return raw as unknown as Fleet;
}

export function readFleetFile(path: string): Fleet {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new FleetError(`cannot read fleet file ${path}: ${(e as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new FleetError(`fleet file ${path} is not JSON: ${(e as Error).message}`);
  }
  try {
    return validateFleet(raw);
  } catch (e) {
    throw new FleetError(`fleet file ${path}: ${(e as Error).message}`);
  }
}

/** `demo` is the built-in fleet; anything else is a file path. */
export function loadFleet(spec: string): Fleet {
  return spec === 'demo' ? validateFleet(demoFleet()) : readFleetFile(spec);
}

/** The host state a new directory starts with: dom0 plus the fleet, properties set explicitly. */
export function fleetState(fleet: Fleet): HostState {
  const app = new SimApp(SimApp.emptyState(), null);
  const pending = [...fleet.qubes];
  // templates before what is based on them
  const rank = (q: FleetQube): number => ({ TemplateVM: 0, StandaloneVM: 1, AppVM: 2, DispVM: 3 })[q.klass];
  pending.sort((a, b) => rank(a) - rank(b));
  const created: [FleetQube, VmState][] = [];
  for (const q of pending) {
    const vm =
      q.klass === 'DispVM'
        ? app.addVm({ name: q.name, klass: 'DispVM', label: q.label ?? 'red', template: q.template ?? null, dispid: app.newDispid() })
        : app.addVm({ name: q.name, klass: q.klass, label: q.label ?? 'red', template: q.template ?? null });
    created.push([q, vm]);
  }
  for (const [q, vm] of created) {
    for (const [p, v] of Object.entries(q.properties ?? {})) vm.props[p] = v === '' && vmPropDefs(vm.klass).get(p)?.type === 'vm' ? null : v;
    vm.tags = [...(q.tags ?? [])];
    // qubesd's core-features extension marks a network-providing qube as it is set
    vm.features = { ...(vm.props['provides_network'] === true ? { servicevm: '1' } : {}), ...(q.features ?? {}) };
    for (const [v, size] of Object.entries(q.volumes ?? {})) {
      const volume = vm.volumes[v];
      if (volume !== undefined && size !== undefined) volume.size = size;
    }
  }
  for (const [p, v] of Object.entries(fleet.properties ?? {})) app.props[p] = v;
  // as qubesd's clockvm setter does
  const clockvm = typeof app.props['clockvm'] === 'string' ? app.vms.get(app.props['clockvm']) : undefined;
  if (clockvm && !('service.clocksync' in clockvm.features)) clockvm.features['service.clocksync'] = '1';
  for (const [cls, backends] of Object.entries(fleet.devices ?? {})) {
    const byBackend: Record<string, { port: string; devid: string; description: string; interfaces: string }[]> = {};
    for (const [be, list] of Object.entries(backends)) {
      byBackend[be] = list.map((d) => ({ port: d.port, devid: d.devid, description: d.description ?? '', interfaces: d.interfaces ?? '' }));
    }
    app.devices[cls] = byBackend;
  }
  return app.snapshot();
}
