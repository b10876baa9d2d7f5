import { createHash } from 'node:crypto';
import type { DomainInfo, DomainType, SystemInfo } from '../shared/policy/index.js';

const DOMAIN_TYPES: readonly DomainType[] = ['AdminVM', 'AppVM', 'TemplateVM', 'StandaloneVM', 'DispVM'];
const DOM0_UUID = '00000000-0000-0000-0000-000000000000';

/** A fleet file (SPEC §10), as far as policy evaluation needs it. */
export interface Fleet {
  properties?: Record<string, unknown>;
  qubes: FleetQube[];
}

export interface FleetQube {
  name: string;
  klass: string;
  template?: string;
  label?: string;
  tags?: string[];
  properties?: Record<string, unknown>;
  features?: Record<string, unknown>;
  power_state?: string;
  uuid?: string;
}

/** A stable uuid for a qube the fleet gives none: an RFC 9562 version 8 uuid from a hash of its name. */
export function fleetUuid(name: string): string {
  const bytes = createHash('sha256').update(`qmcp-fleet:${name}`).digest().subarray(0, 16);
  bytes[6] = ((bytes[6] ?? 0) & 0x0f) | 0x80;
  bytes[8] = ((bytes[8] ?? 0) & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function truthy(value: unknown): boolean {
  return value === true || (typeof value === 'string' && ['true', 'yes', '1'].includes(value.toLowerCase()));
}

/** A feature counts as set when it has a non-empty value, as in Python. */
function isSet(value: unknown): boolean {
  return value !== undefined && value !== null && value !== false && value !== '';
}

/** A property value naming a qube, or null for none (`null`, '' or 'None'). */
function qubeRef(value: unknown): string | null {
  return typeof value === 'string' && value !== '' && value !== 'None' ? value : null;
}

/**
 * What qubesd's `internal.GetSystemInfo` would report for a fleet; dom0 is added. A default_dispvm
 * not set defaults, as in qubesd, to the global one, and for a disposable to its own template.
 */
export function fleetSystemInfo(fleet: Fleet): SystemInfo {
  const globalDispvm = qubeRef(fleet.properties?.['default_dispvm']);
  const domains: Record<string, DomainInfo> = {
    dom0: {
      tags: [],
      type: 'AdminVM',
      template_for_dispvms: false,
      default_dispvm: globalDispvm,
      power_state: 'Running',
      uuid: DOM0_UUID,
    },
  };
  for (const qube of fleet.qubes) {
    if (!DOMAIN_TYPES.includes(qube.klass as DomainType)) throw new Error(`${qube.name}: unknown klass ${qube.klass}`);
    const props = qube.properties ?? {};
    const ownDefault = qube.klass === 'DispVM' ? (qube.template ?? null) : globalDispvm;
    domains[qube.name] = {
      tags: [...(qube.tags ?? [])],
      type: qube.klass as DomainType,
      template_for_dispvms: truthy(props['template_for_dispvms']),
      default_dispvm: 'default_dispvm' in props ? qubeRef(props['default_dispvm']) : ownDefault,
      power_state: qube.power_state ?? 'Halted',
      uuid: qube.uuid ?? fleetUuid(qube.name),
      guivm: null,
      internal: isSet(qube.features?.['internal']),
    };
  }
  return { domains };
}

/** Checks the parts of a fleet file this module reads. */
export function parseFleet(json: unknown): Fleet {
  if (typeof json !== 'object' || json === null || !Array.isArray((json as { qubes?: unknown }).qubes)) {
    throw new Error('a fleet is an object with a "qubes" array');
  }
  const fleet = json as Fleet;
  for (const q of fleet.qubes) {
    if (typeof q !== 'object' || q === null || typeof q.name !== 'string' || typeof q.klass !== 'string') {
      throw new Error('every qube needs a "name" and a "klass"');
    }
  }
  return fleet;
}
