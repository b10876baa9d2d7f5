/**
 * Leases: how long a qube the agent creates may live. One principal's lease
 * settings are one object, so a list of principals can hold one each. The
 * expiry itself is a qube feature only dom0 sets; the agent reads it.
 */

/** The feature holding a qube's expiry, an ISO time to the second; never settable by the agent. */
export const LEASE_FEATURE = 'qmcp-lease-expires';

/** Features the agent may never set, whatever the operator's allowlist says. */
export const RESERVED_FEATURES: readonly string[] = ['internal', LEASE_FEATURE];

export interface LeaseSettings {
  /** Seconds a new qube lives unless the agent asks for less; null: no expiry. */
  readonly defaultSeconds: number | null;
  /** Seconds a renewal may reach from now; null: no bound. Never below the default. */
  readonly maxSeconds: number | null;
}

/** Today's behaviour: nothing expires. */
export const NO_LEASE: LeaseSettings = { defaultSeconds: null, maxSeconds: null };

const UNIT: Readonly<Record<string, number>> = { s: 1, m: 60, h: 3600, d: 86400 };
/** Past any lease an operator means: a larger figure is a typo. */
const MAX_DURATION = 10 * 366 * 86400;

/** A duration: `"none"` (null), whole seconds, or `"N"` with s, m, h or d; undefined when malformed. */
export function parseDuration(v: unknown): number | null | undefined {
  if (v === 'none') return null;
  let seconds: number | undefined;
  if (typeof v === 'number') seconds = v;
  else if (typeof v === 'string') {
    const m = /^([1-9][0-9]{0,9})([smhd])$/.exec(v);
    if (m) seconds = Number(m[1]) * (UNIT[m[2] as string] as number);
  }
  if (seconds === undefined || !Number.isSafeInteger(seconds) || seconds <= 0 || seconds > MAX_DURATION) return undefined;
  return seconds;
}

/** A duration as the settings write it, in its largest whole unit ("8h"); "none" for null. */
export function showDuration(seconds: number | null): string {
  if (seconds === null) return 'none';
  const unit = (['d', 'h', 'm'] as const).find((u) => seconds % (UNIT[u] as number) === 0);
  return unit ? `${seconds / (UNIT[unit] as number)}${unit}` : `${seconds}s`;
}

/** The lease object `{default, max}`, or what is wrong with it. */
export function parseLease(v: unknown): LeaseSettings | string {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'must be an object {"default", "max"}';
  const o = v as Record<string, unknown>;
  if (Object.keys(o).some((k) => k !== 'default' && k !== 'max')) return 'only default and max';
  const d = parseDuration(o['default'] ?? 'none');
  const m = parseDuration(o['max'] ?? 'none');
  if (d === undefined || m === undefined) return 'durations are "none", seconds, or a number with s, m, h or d';
  // "none" is the longest lease, so a bounded maximum needs a bounded default at or under it
  if (m !== null && (d === null || d > m)) return 'the default may not exceed the maximum';
  return { defaultSeconds: d, maxSeconds: m };
}

/** The expiry `seconds` from `now`, as the feature holds it. */
export function expiryAt(now: Date, seconds: number): string {
  return new Date(Math.floor(now.getTime() / 1000) * 1000 + seconds * 1000).toISOString().slice(0, 19) + 'Z';
}

/** The expiry a feature value names; null when it is not one dom0 writes. */
export function parseExpiry(value: string): Date | null {
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/.test(value)) return null;
  const t = new Date(value);
  return Number.isNaN(t.getTime()) || t.toISOString().slice(0, 19) + 'Z' !== value ? null : t;
}
