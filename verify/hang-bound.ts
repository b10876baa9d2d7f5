/**
 * Bounds that end a hang and never time the work: a duration that is
 * generous on an idle machine, scaled as scripts/run-tests.js scales each
 * test file's limit (by QMCP_TEST_TIME_FACTOR, and by the load per core when
 * the bound is taken, at least 1), so a loaded machine waits longer rather
 * than failing.
 */
import { availableParallelism, loadavg } from 'node:os';

/** The longest delay a Node timer keeps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export function hangBoundMs(idleMs: number): number {
  const factor = Number(process.env['QMCP_TEST_TIME_FACTOR'] || 1);
  const load = Math.max(1, (loadavg()[0] ?? 0) / availableParallelism());
  return Math.min(MAX_TIMER_MS, Math.round(idleMs * (factor > 0 ? factor : 1) * load));
}
