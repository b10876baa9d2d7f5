/**
 * The budget lock: one exclusive file held by a create from its budget check
 * to its read-back, so concurrent creates (separate processes) cannot race
 * past the cap. A lock whose owner died is reclaimed.
 */
import { closeSync, mkdirSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { stateDir } from './deps.js';

export interface HeldLock {
  release(): void;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function tryClaim(path: string): boolean {
  try {
    const fd = openSync(path, 'wx', 0o600);
    writeSync(fd, String(process.pid));
    closeSync(fd);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return false;
  }
}

function reclaimIfStale(path: string): void {
  let owner = NaN;
  try {
    owner = Number.parseInt(readFileSync(path, 'utf8'), 10);
  } catch {
    return;
  }
  // No pid yet means a live claimant between open and write.
  if (Number.isNaN(owner) || alive(owner)) return;
  try {
    unlinkSync(path);
  } catch {
    // Someone else reclaimed it first.
  }
}

/** Waits up to `waitMs` for the lock; null when it stayed busy (the caller refuses). */
export async function acquireBudgetLock(root: string, waitMs: number): Promise<HeldLock | null> {
  const dir = join(stateDir(root), 'locks');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const path = join(dir, 'budget.lock');
  const deadline = Date.now() + waitMs;
  for (;;) {
    if (tryClaim(path)) break;
    reclaimIfStale(path);
    if (tryClaim(path)) break;
    if (Date.now() >= deadline) return null;
    await sleep(10 + Math.floor(Math.random() * 20));
  }
  let held = true;
  return {
    release(): void {
      if (!held) return;
      held = false;
      try {
        unlinkSync(path);
      } catch {
        // Already gone.
      }
    },
  };
}
