/** Value redaction (SPEC §4.4): a qube name reaches the agent only if that qube is visible. */
import type { Snapshot } from '../service/snapshot.js';
import type { PropertyValue } from './reads.js';

/** What the agent sees in place of a qube it cannot see; not a valid qube name. */
export const OUTSIDE = '(outside)';

/** A qube reference: null for none, the name when visible, else the sentinel. */
export function redactRef(snapshot: Snapshot, name: string): string | null {
  if (name === '') return null;
  return snapshot.visible(name) ? name : OUTSIDE;
}

export type JsonValue = string | number | boolean | null;

/** A property's value as JSON, with qube references redacted. */
export function propertyJson(snapshot: Snapshot, p: PropertyValue): JsonValue {
  return valueJson(p, (name) => snapshot.visible(name) !== undefined);
}

/** A property's value as JSON, a qube reference shown only when `visible` says so. */
export function valueJson(p: PropertyValue, visible: (name: string) => boolean): JsonValue {
  switch (p.type) {
    case 'vm':
      if (p.text === '') return null;
      return visible(p.text) ? p.text : OUTSIDE;
    case 'bool':
      return p.text === '' ? null : p.text === 'True';
    case 'int':
      return /^-?[0-9]{1,15}$/.test(p.text) ? Number(p.text) : null;
    default:
      return p.text;
  }
}
