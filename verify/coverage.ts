/**
 * Every operation of the capability model has a malformed grammar, a
 * noninterference call and a sequence step, and a timing form where timing
 * applies (verify/timing/forms.ts); each check fails naming what its list
 * lacks, and `npm run verify` lists every gap before the checks start.
 */
import { OPERATIONS } from '../src/shared/model/capabilities.js';
import type { Operation } from '../src/shared/model/capabilities.js';
import { malformedGaps } from './malformed/grammar.js';
import { noninterferenceGaps } from './noninterference/calls.js';
import { sequencesGaps } from './sequences/ops.js';
import { timingGaps } from './timing/forms.js';

/** One line per gap, naming the operation and the missing piece; empty when verify covers the whole model. */
export function verifyCoverage(ops: readonly Operation[] = OPERATIONS): string[] {
  return [...malformedGaps(ops), ...noninterferenceGaps(ops), ...sequencesGaps(ops), ...timingGaps(ops)];
}
