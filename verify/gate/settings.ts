/** The gate settings the checks run with the gate on under. */
import type { GateAnswer } from '../../src/shared/model/capabilities.js';
import { OPERATIONS } from '../../src/shared/model/capabilities.js';

/** The model's defaults (the setting left empty), or every operation the gate can apply to asking. */
export type GateChoice = 'defaults' | 'every';

const EVERY: Readonly<Record<string, GateAnswer>> = Object.fromEntries(OPERATIONS.filter((op) => op.gate !== null).map((op) => [op.id, 'ask'] as const));

/** The `gate` setting for a choice. */
export function gateSetting(choice: GateChoice): Readonly<Record<string, GateAnswer>> {
  return choice === 'every' ? EVERY : {};
}
