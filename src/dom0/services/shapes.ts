/** Argument and payload shapes the read services accept (SPEC §4.15). */
import { isQubeName } from '../../shared/names.js';

/** No argument and an empty payload; anything else is malformed. */
export function parseNothing(argument: string, payload: Buffer): Record<string, never> | null {
  return argument === '' && payload.length === 0 ? {} : null;
}

/** A qube name as the argument and an empty payload. */
export function parseQubeArgument(argument: string, payload: Buffer): { name: string } | null {
  return isQubeName(argument) && payload.length === 0 ? { name: argument } : null;
}
