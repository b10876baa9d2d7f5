import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
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
