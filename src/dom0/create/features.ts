/** The feature write rule (SPEC §4a): default-deny allowlist, never `internal`, qube-naming values visible. */
import type { Snapshot } from '../service/snapshot.js';
import { RESERVED_FEATURES } from '../../shared/model/lease.js';

/** Features whose value names a qube. */
const NAMING = new Set(['guivm', 'audiovm', 'default-guivm', 'default-audiovm', 'gui-default-guivm', 'supported-guivm']);
const MAX_VALUE = 256;

/** Whether the feature's value names a qube (to be visible, so read with the call's targets). */
export function namesAQube(feature: string): boolean {
  return NAMING.has(feature);
}

/** Null when the write is allowed, else the reason (for the operator only). */
export function checkFeatureValue(snapshot: Snapshot, allow: readonly string[], feature: string, value: string): string | null {
  if (RESERVED_FEATURES.includes(feature)) return `${feature} is never settable`;
  if (!allow.includes(feature)) return 'feature not allowlisted';
  if (value.length > MAX_VALUE || !/^[\x20-\x7e]*$/.test(value)) return 'feature value shape';
  if (NAMING.has(feature) && value !== '' && !snapshot.visible(value)) return 'feature names a qube outside';
  return null;
}
