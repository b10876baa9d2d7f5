/**
 * The lease a create asks for, checked against the operator's lease
 * settings before any lookup: a mistake here depends only on the call and
 * the settings, so the agent is told it.
 */
import type { LeaseSettings } from '../../shared/model/lease.js';
import { ActionableError } from '../service/refusal.js';

/** The payload key a create's lease travels in, in seconds. */
export const LEASE_KEY = 'leaseSeconds';

function isSeconds(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v > 0;
}

/**
 * The seconds a new qube lives (null: no expiry), from what the agent asked
 * (undefined: the default); undefined when the value is malformed.
 */
export function birthLease(lease: LeaseSettings | null, asked: unknown): number | null | undefined {
  if (asked !== undefined && !isSeconds(asked)) return undefined;
  if (lease === null) throw new ActionableError('lease_unset', 'the operator\'s lease setting is unusable, so nothing can be created: ask the operator');
  if (asked === undefined) return lease.defaultSeconds;
  if (lease.defaultSeconds !== null && asked > lease.defaultSeconds) {
    throw new ActionableError('lease_too_long', `a new qube's lease is at most ${lease.defaultSeconds} seconds`);
  }
  return asked;
}

/** The seconds a renewal gives from now (null: lift the lease), or undefined when malformed. */
export function renewLease(lease: LeaseSettings | null, asked: unknown): number | null | undefined {
  if (asked !== undefined && !isSeconds(asked)) return undefined;
  if (lease === null) throw new ActionableError('lease_unset', 'the operator\'s lease setting is unusable, so no lease can be renewed: ask the operator');
  if (asked === undefined) return lease.defaultSeconds;
  if (lease.maxSeconds !== null && asked > lease.maxSeconds) {
    throw new ActionableError('lease_too_long', `a lease can be renewed for at most ${lease.maxSeconds} seconds from now`);
  }
  return asked;
}
