/**
 * The action gate's answer for one operation under the installed settings
 * (docs/action-gate.md). Read fail-closed: a malformed gate setting asks for
 * every operation the gate can apply to.
 */
import type { GateAnswer, Operation } from './capabilities.js';
import { OPERATIONS } from './capabilities.js';
import type { Settings } from './settings.js';

/** `ask` or `allow`; null when the gate never applies to the operation. */
export function gateOf(settings: Pick<Settings, 'gate'>, op: Operation): GateAnswer | null {
  if (op.gate === null) return null;
  if (settings.gate === null) return 'ask';
  return settings.gate[op.id] ?? op.gate;
}

/** The ids of the operations that ask under SETTINGS, in the model's order. */
export function gatedOperations(settings: Pick<Settings, 'gate'>, ops: readonly Operation[] = OPERATIONS): string[] {
  return ops.filter((op) => gateOf(settings, op) === 'ask').map((op) => op.id);
}

/** The operations that ask under SETTINGS, by who asks: Qubes' dialog (the policy says ask) or the dom0 services. */
export function gatedByLayer(settings: Pick<Settings, 'gate'>, ops: readonly Operation[] = OPERATIONS): { dialog: string[]; services: string[] } {
  const gated = ops.filter((op) => gateOf(settings, op) === 'ask');
  return { dialog: gated.filter((op) => op.layer === 'policy').map((op) => op.id), services: gated.filter((op) => op.layer === 'service').map((op) => op.id) };
}
