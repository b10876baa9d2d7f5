import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { tryLock } from '../lockfile.js';
import type { HeldLock } from '../lockfile.js';

/**
 * Bounds how many calls of one principal run at once (SPEC §4.15): each slot
 * is a lock file, and a slot whose owner died is reclaimed. Resolves to null
 * when every slot is busy.
 */
export async function acquireSlot(dir: string, principal: string, count: number): Promise<HeldLock | null> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  for (let i = 0; i < count; i++) {
    const slot = await tryLock(join(dir, `${principal}.${i}`));
    if (slot) return slot;
  }
  return null;
}

/** How long an approved call waits for a slot again before it is refused. */
const REACQUIRE_MS = 10_000;

/** A slot again for a call that waited for the operator without one: waits a bounded time for one to free. */
export async function reacquireSlot(dir: string, principal: string, count: number): Promise<HeldLock | null> {
  const deadline = Date.now() + REACQUIRE_MS;
  for (;;) {
    const slot = await acquireSlot(dir, principal, count);
    if (slot || Date.now() > deadline) return slot;
    await sleep(50);
  }
}
