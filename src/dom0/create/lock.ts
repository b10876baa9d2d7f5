/**
 * The budget lock: held by a create from its budget check to its read-back,
 * so concurrent creates (separate processes) cannot race past the cap.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { LockBusyError, acquireLock } from '../lockfile.js';
import type { HeldLock } from '../lockfile.js';
import { stateDir } from './deps.js';
import type { WriteDeps } from './deps.js';

export type { HeldLock };

/** Waits up to `waitMs` for the lock; null when it stayed busy (the caller refuses). */
export async function acquireBudgetLock(root: string, waitMs: number): Promise<HeldLock | null> {
  const dir = join(stateDir(root), 'locks');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  try {
    return await acquireLock(join(dir, 'budget.lock'), waitMs);
  } catch (err) {
    if (err instanceof LockBusyError) return null;
    throw err;
  }
}

const DEFAULT_LOCK_WAIT_MS = 30_000;

/** The budget lock as a write service takes it: through the test seam when there is one. */
export function takeBudgetLock(deps: WriteDeps): Promise<HeldLock | null> {
  return (deps.budgetLock ?? acquireBudgetLock)(deps.root, deps.lockWaitMs ?? DEFAULT_LOCK_WAIT_MS);
}
