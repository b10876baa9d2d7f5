/** Every check `npm run verify` runs, in the order of its table. */
import { approvalChannelCheck } from './approval-channel/check.js';
import type { Check } from './check.js';
import { concurrencyCheck } from './concurrency/check.js';
import { faultsCheck } from './faults/check.js';
import { floodCheck } from './flood/check.js';
import { malformedCheck } from './malformed/check.js';
import { noninterferenceCheck } from './noninterference/check.js';
import { racesCheck } from './races/check.js';
import { sequencesCheck } from './sequences/check.js';
import { tamperCheck } from './tamper/check.js';
import { timingCheck } from './timing/check.js';

export const CHECKS: readonly Check[] = [noninterferenceCheck, sequencesCheck, malformedCheck, faultsCheck, racesCheck, approvalChannelCheck, tamperCheck, concurrencyCheck, floodCheck, timingCheck];
