/**
 * Qube names as Qubes accepts them: a letter, then letters, digits, `_`, `.`
 * and `-`; at most 31 characters; not `Domain-0`, `none` or `default`; not
 * ending in `-dm` (the suffix Xen gives device-model stubdomains).
 */
const QUBE_NAME = /^[a-zA-Z][a-zA-Z0-9_.-]{0,30}$/;

export function isQubeName(value: unknown): value is string {
  return (
    typeof value === 'string' &&
    QUBE_NAME.test(value) &&
    value !== 'Domain-0' &&
    value !== 'none' &&
    value !== 'default' &&
    !value.endsWith('-dm')
  );
}

/** Why Qubes rejects a name, in qubesd's own words; null when it is valid. */
export function qubeNameProblem(value: string): string | null {
  if (value.length > 31) return 'VM name must be shorter than 32 characters';
  if (/^[0-9_.-]/.test(value)) return 'VM name cannot start with hyphen, underscore, dot or numbers';
  if (!/^[a-zA-Z][a-zA-Z0-9_.-]*$/.test(value)) return 'VM name contains illegal characters';
  if (value === 'Domain-0') return "VM name cannot be 'Domain-0'";
  if (value === 'none' || value === 'default') return "VM name cannot be 'none' nor 'default'";
  if (value.endsWith('-dm')) return 'VM name cannot end with -dm';
  return null;
}
