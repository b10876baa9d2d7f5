import { mkdirSync, openSync, closeSync, writeSync, readFileSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';

/** A held concurrency slot; release it when the call ends. */
export interface Slot {
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

/**
 * Bounds how many calls of one principal run at once (SPEC §4.15). Each
 * service is its own process, so a slot is a file created exclusively; a slot
 * whose owner died is reclaimed. Returns null when every slot is busy.
 */
export function acquireSlot(dir: string, principal: string, count: number): Slot | null {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  for (let i = 0; i < count; i++) {
    const path = join(dir, `${principal}.${i}`);
    if (!tryClaim(path)) {
      let owner = NaN;
      try {
        owner = Number.parseInt(readFileSync(path, 'utf8'), 10);
      } catch {
        continue;
      }
      // A half-written slot (no pid yet) belongs to a live claimant.
      if (Number.isNaN(owner) || alive(owner)) continue;
      try {
        unlinkSync(path);
      } catch {
        continue;
      }
      if (!tryClaim(path)) continue;
    }
    let held = true;
    return {
      release(): void {
        if (!held) return;
        held = false;
        try {
          unlinkSync(path);
        } catch {
          // Already gone: nothing to release.
        }
      },
    };
  }
  return null;
}
