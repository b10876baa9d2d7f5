/**
 * Coverage of the capability model by a check's hand-written inputs: each
 * list is keyed by operation id, and every operation it applies to must
 * have an entry, or the check fails naming the operation and the piece.
 */
import type { Operation } from '../src/shared/model/capabilities.js';
import type { Failure } from './check.js';

/**
 * One line per operation of `ops` that `applies` to and `list` has no entry
 * for, and one per entry that names no such operation (a stale or misfiled key).
 */
export function gapsIn(ops: readonly Operation[], list: Readonly<Record<string, unknown>>, piece: string, applies: (op: Operation) => boolean = () => true): string[] {
  const wanted = ops.filter(applies);
  const missing = wanted.filter((op) => !Object.hasOwn(list, op.id)).map((op) => `${op.id} (${op.service}): no ${piece}`);
  const stale = Object.keys(list)
    .filter((id) => !wanted.some((op) => op.id === id))
    .map((id) => `${id}: a ${piece} for no operation of the model it applies to`);
  return [...missing, ...stale];
}

/** A check's gaps as failures of its report: a list that lacks an operation has not verified the model. */
export function coverageFailures(check: string, gaps: readonly string[]): Failure[] {
  return gaps.map((what) => ({ check, what: `coverage: ${what}`, reproduction: 'add the entry to the list the line names (docs/verification.md, "Coverage of the model")' }));
}
