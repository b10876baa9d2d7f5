/**
 * A gate setting that lets every operation run without asking: for the
 * simulated hosts of tests and checks that are about something else. A
 * real install without a `gate` setting asks by the model's defaults.
 */
import type { GateAnswer } from '../shared/model/capabilities.js';
import { OPERATIONS } from '../shared/model/capabilities.js';

export const OPEN_GATE: Readonly<Record<string, GateAnswer>> = Object.fromEntries(
  OPERATIONS.filter((op) => op.gate !== null).map((op) => [op.id, 'allow'] as const),
);
