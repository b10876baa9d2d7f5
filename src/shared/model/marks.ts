/** Tags dom0 stamps on what the agent made; the policy and the dom0 services read them alike. */

/** Provenance of created qubes: this prefix and the principal's name (SPEC §4.5). */
export const OWNER_PREFIX = 'qmcp-owner-';
/**
 * A tombstone carries this tag, which hides it from the policy and the
 * services, and a dated one that starts with it (`qmcp-tombstone-DATE`).
 */
export const TOMBSTONE_PREFIX = 'qmcp-tombstone';

/** The owner tag of a principal's qubes; characters a tag may not hold become `_`. */
export function ownerTag(principal: string): string {
  return OWNER_PREFIX + principal.replace(/[^a-zA-Z0-9_-]/g, '_');
}
