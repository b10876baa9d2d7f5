/** The gate settings the checks run with the gate on under. */
import type { GateAnswer } from '../../src/shared/model/capabilities.js';
import { OPERATIONS } from '../../src/shared/model/capabilities.js';

/** The model's defaults (the setting left empty), every operation the gate can apply to asking, or none of them (the gate off). */
export type GateChoice = 'defaults' | 'every' | 'off';

const every = (answer: GateAnswer): Readonly<Record<string, GateAnswer>> => Object.fromEntries(OPERATIONS.filter((op) => op.gate !== null).map((op) => [op.id, answer] as const));
const EVERY = every('ask');
const OFF = every('allow');

/** The `gate` setting for a choice. */
export function gateSetting(choice: GateChoice): Readonly<Record<string, GateAnswer>> {
  return choice === 'every' ? EVERY : choice === 'off' ? OFF : {};
}
