/** Every check `npm run verify` runs, in the order of its table. */
import type { Check } from './check.js';

export const CHECKS: readonly Check[] = [];
