/**
 * qmcp.SetProperty+QUBE: the settable allowlist of SPEC §4a at full tier.
 * netvm only to none (never on a network-providing qube); default_dispvm
 * only to a visible disposable template. Echoes the value read back.
 */
import { isQubeName } from '../../shared/names.js';
import type { WriteDeps } from '../create/deps.js';
import { isLabel, jsonObject, LABELS } from '../create/input.js';
import { ActionableError, ServiceRefusal } from '../service/refusal.js';
import type { QubeLimits } from '../../shared/model/settings.js';
import type { ServiceSpec } from '../service/run.js';

type Value = string | number | boolean | null;

export interface SetPropertyInput {
  readonly qube: string;
  readonly property: string;
  /** The value as qubesd takes it ('' for none). */
  readonly wire: string;
}

/**
 * What a value the agent chose may be wrong in, told before any lookup: it
 * depends on the value and the operator's settings alone.
 */
function int(v: Value, min: number, max: number | null, unit: string): string {
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw new ActionableError('bad_value', `the value must be an integer${unit}`);
  if (max === null) throw new ActionableError('limits_unset', 'the operator\'s limits for one qube are unusable, so this cannot be set');
  if (v < min || v > max) throw new ActionableError('out_of_range', `the value must be from ${min} to ${max}${unit} on this host`);
  return String(v);
}

function bool(v: Value): string {
  if (typeof v !== 'boolean') throw new ActionableError('bad_value', 'the value must be true or false');
  return v ? 'True' : 'False';
}

/**
 * Each settable property and the wire form of an acceptable value; null
 * for one never allowed (netvm to a qube: the uniform refusal). Memory and
 * vcpus are bounded by what the host gives one qube (qubeLimits); below, by
 * Qubes' own rules (memory and vcpus positive, maxmem 0 for no balancing).
 */
const SETTABLE: Record<string, (v: Value, limits: QubeLimits | null) => string | null> = {
  label: (v) => {
    if (!isLabel(v)) throw new ActionableError('unknown_label', `the label must be one of ${LABELS.join(', ')}`);
    return v;
  },
  memory: (v, l) => int(v, 1, l?.memoryMiB ?? null, ' MiB'),
  maxmem: (v, l) => int(v, 0, l?.memoryMiB ?? null, ' MiB'),
  vcpus: (v, l) => int(v, 1, l?.vcpus ?? null, ''),
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

export function setPropertyService(deps: WriteDeps): ServiceSpec<SetPropertyInput> {
  return {
    operation: 'property.set',
    changesState: true,
    parse(argument, payload) {
      if (!isQubeName(argument)) return null;
      const o = jsonObject(payload, ['name', 'value'], []);
      if (!o || typeof o['name'] !== 'string' || !Object.hasOwn(SETTABLE, o['name'])) return null;
      const check = SETTABLE[o['name']];
      const wire = check ? check(o['value'] as Value, deps.settings().qubeLimits) : null;
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
