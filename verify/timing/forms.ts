/**
 * What the timing check times, from the capability model. Timing applies to
 * every operation that names a qube: its target is one (an operation the
 * policy decides), its argument is one, or it changes the machine (a dom0
 * service that is not read-only names a qube to act on or, for the creates,
 * the template in its payload, or a plan, the qubes of its steps). What is
 * left are the read-only dom0 services without a qube argument (List,
 * PoolFigures, TombstoneList, DeviceList, Events, and PlanStatus, whose argument is a
 * plan's id): they take no name to time.
 */
import type { Operation } from '../../src/shared/model/capabilities.js';
import { gapsIn } from '../gaps.js';
import { GRAMMARS } from '../malformed/grammar.js';
import type { Grammar } from '../malformed/grammar.js';

export function timingApplies(op: Operation): boolean {
  return op.target !== 'dom0-service' || op.argumentIsQube || !op.readOnly;
}

/** One call of a dom0 service naming `qube`, from its grammar: as the argument, or as a create's template; null when the grammar names none. */
export function serviceCall(op: Operation, qube: string, grammars: Readonly<Record<string, Grammar>> = GRAMMARS): [string, string] | null {
  const g = grammars[op.id];
  if (!g) return null;
  const example = g.payload?.examples[0];
  if (g.argument === 'qube') return [`${op.service}+${qube}`, g.lines?.examples[0] ?? (example ? JSON.stringify(example) : '')];
  if (example && 'template' in example) return [op.service, JSON.stringify({ ...example, template: qube })];
  if (g.payload?.naming) return [op.service, JSON.stringify(g.payload.naming(qube))];
  return null;
}

/**
 * One line per operation timing applies to and has no form for. What the
 * policy decides is timed through the engine on the operation's service, so
 * always has one; a dom0 service needs a grammar that names a qube.
 */
export function timingGaps(ops: readonly Operation[], grammars: Readonly<Record<string, Grammar>> = GRAMMARS): string[] {
  const dom0 = (op: Operation): boolean => op.target === 'dom0-service' && timingApplies(op);
  const forms = Object.fromEntries(ops.filter((op) => dom0(op) && serviceCall(op, 'ai-box', grammars)).map((op) => [op.id, true]));
  return gapsIn(ops, forms, 'timing form', dom0);
}
