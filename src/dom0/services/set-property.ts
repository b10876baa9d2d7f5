/**
 * qmcp.SetProperty+QUBE: the settable allowlist of SPEC §4a at full tier.
 * netvm only to none (never on a network-providing qube); default_dispvm
 * only to a visible disposable template. Echoes the value read back.
 */
import { isQubeName } from '../../shared/names.js';
import type { WriteDeps } from '../create/deps.js';
import { isLabel, jsonObject } from '../create/input.js';
import { ServiceRefusal } from '../service/refusal.js';
import type { ServiceSpec } from '../service/run.js';

type Value = string | number | boolean | null;

export interface SetPropertyInput {
  readonly qube: string;
  readonly property: string;
  /** The value as qubesd takes it ('' for none). */
  readonly wire: string;
}

const MAX_MEMORY_MIB = 1 << 20;
const MAX_VCPUS = 512;

function int(v: Value, min: number, max: number): string | null {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= min && v <= max ? String(v) : null;
}

function bool(v: Value): string | null {
  return typeof v === 'boolean' ? (v ? 'True' : 'False') : null;
}

/** Each settable property and the wire form of an acceptable value, else null. */
const SETTABLE: Record<string, (v: Value) => string | null> = {
  label: (v) => (isLabel(v) ? v : null),
  memory: (v) => int(v, 1, MAX_MEMORY_MIB),
  maxmem: (v) => int(v, 0, MAX_MEMORY_MIB),
  vcpus: (v) => int(v, 1, MAX_VCPUS),
  autostart: bool,
  include_in_backups: bool,
  default_dispvm: (v) => (isQubeName(v) ? v : null),
  netvm: (v) => (v === null || v === 'none' ? '' : null),
};

/** The read-back value as JSON: booleans and integers typed, none as null. */
function echo(type: string, value: string): Value {
  if (type === 'bool') return value === 'True';
  if (type === 'int') return Number(value);
  if (type === 'vm' && value === '') return null;
  return value;
}

export function setPropertyService(_deps: WriteDeps): ServiceSpec<SetPropertyInput> {
  return {
    operation: 'property.set',
    changesState: true,
    parse(argument, payload) {
      if (!isQubeName(argument)) return null;
      const o = jsonObject(payload, ['name', 'value'], []);
      if (!o || typeof o['name'] !== 'string' || !Object.hasOwn(SETTABLE, o['name'])) return null;
      const check = SETTABLE[o['name']];
      const wire = check ? check(o['value'] as Value) : null;
      if (wire === null) return null;
      return { qube: argument, property: o['name'], wire };
    },
    targets: (i) => [{ name: i.qube, tier: 'full' }],
    reads: 'named',
    refers: (i) => (i.property === 'default_dispvm' ? [i.wire] : []),
    keys: (i) => [i.property],
    async handle(ctx) {
      const { input, qubesd, snapshot } = ctx;
      if (input.property === 'netvm') {
        if ((await qubesd.property(input.qube, 'provides_network')).value !== 'False') {
          throw new ServiceRefusal('netvm of a network-providing qube');
        }
      }
      if (input.property === 'default_dispvm') {
        const target = snapshot.visible(input.wire);
        const isDvmt = target
          ? (await qubesd.property(target.name, 'template_for_dispvms').catch(() => null))?.value === 'True'
          : false;
        if (!target || !isDvmt) throw new ServiceRefusal('default_dispvm not a visible disposable template');
      }
      await qubesd.call('admin.vm.property.Set', input.qube, input.property, input.wire);
      const back = await qubesd.property(input.qube, input.property);
      return { name: input.property, value: echo(back.type, back.value) };
    },
  };
}
