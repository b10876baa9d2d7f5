import { randomBytes } from 'node:crypto';
import { linkSync, readdirSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { QmcpError } from '../shared/errors.js';

/*
 * Lock files shared by dom0's service processes (the audit log, the create
 * budget, per-principal call slots). Node has no flock, so a lock is a file that
 * holds its owner's pid and a random token, made whole beside its name and
 * linked to it (link fails when the name exists), so an owner killed at any
 * moment leaves no lock or one naming it. A waiter may remove the lock only
 * when its owner's pid no longer exists, and only while holding a second
 * O_EXCL file (the breaker) and after reading the same dead owner's token
 * again under it: two waiters can then never both break one stale lock, and
 * nobody deletes a live owner's fresh lock. A lock file without an owner
 * line after EMPTY_STALE_MS (not one this code made), and a breaker
 * older than BREAKER_STALE_MS (a breaker is held for one read and one
 * unlink), are treated as stale. Waiting is bounded: past the deadline the
 * caller gets an error, so a call is refused rather than logged unlocked.
 *
 * The file made beside the name is named `<name>.<pid>.<hex>.tmp` (the
 * breaker's `<name>.break.<pid>.<hex>.tmp`). An owner killed after writing
 * it and before removing it leaves it behind; whoever next takes the lock
 * removes those of `<name>` whose writer's pid no longer exists, so such
 * litter lasts until the lock's next use and never needs the operator. A
 * live writer's file is never removed (its link would fail); a dead
 * writer's whose pid is taken again waits until that process ends too.
 *
 * The file operations are synchronous: each is a system call or three on a
 * small local file, and their promise forms cost several times the CPU in
 * thread-pool handoffs, on every call that takes a slot or appends.
 */

const EMPTY_STALE_MS = 10_000;
const BREAKER_STALE_MS = 10_000;
const OWNER = /^(\d+) ([0-9a-f]{32})\n$/;
/** What follows `<name>.` in a file written beside a lock or its breaker: the writer's pid. */
const LEFTOVER = /^(?:break\.)?(\d+)\.[0-9a-f]{16}\.tmp$/;

/** Thrown when the lock stays busy past the deadline. */
export class LockBusyError extends QmcpError {
  readonly code = 'ERR_QMCP_LOCK_BUSY';
}

function errno(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException).code;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errno(err) === 'EPERM';
  }
}

function readOrNull(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    if (errno(err) === 'ENOENT') return null;
    throw err;
  }
}

function olderThan(path: string, ms: number): boolean {
  try {
    return Date.now() - statSync(path).mtimeMs > ms;
  } catch (err) {
    if (errno(err) === 'ENOENT') return false;
    throw err;
  }
}

function unlinkIfPresent(path: string): void {
  try {
    unlinkSync(path);
  } catch (err) {
    if (errno(err) !== 'ENOENT') throw err;
  }
}

function createExclusive(path: string, content: string): boolean {
  // A lock opened empty and written after would, if its owner were killed between the two, stay
  // unbreakable for EMPTY_STALE_MS, past the bound of the shorter waits (a call's audit, its rate).
  const whole = `${path}.${process.pid}.${randomBytes(8).toString('hex')}.tmp`;
  writeFileSync(whole, content, { flag: 'wx', mode: 0o600 });
  try {
    linkSync(whole, path);
    return true;
  } catch (err) {
    if (errno(err) === 'EEXIST') return false;
    throw err;
  } finally {
    unlinkIfPresent(whole);
  }
}

function isStale(path: string, seen: string): boolean {
  const owner = OWNER.exec(seen);
  if (owner) return !alive(Number(owner[1]));
  return olderThan(path, EMPTY_STALE_MS);
}

function breakIfStale(path: string): void {
  const seen = readOrNull(path);
  if (seen === null || !isStale(path, seen)) return;
  const breaker = `${path}.break`;
  if (!createExclusive(breaker, `${process.pid}\n`)) {
    if (olderThan(breaker, BREAKER_STALE_MS)) unlinkIfPresent(breaker);
    return;
  }
  try {
    if (readOrNull(path) === seen) unlinkIfPresent(path);
  } finally {
    unlinkIfPresent(breaker);
  }
}

/** Removes the files beside `path` whose writers died before removing them. */
function sweepLeftovers(path: string): void {
  const dir = dirname(path);
  const prefix = `${basename(path)}.`;
  try {
    for (const name of readdirSync(dir)) {
      const writer = name.startsWith(prefix) ? LEFTOVER.exec(name.slice(prefix.length)) : null;
      if (writer && !alive(Number(writer[1]))) unlinkIfPresent(join(dir, name));
    }
  } catch {
    // litter that cannot be removed now is removed at a later take; the lock is held either way
  }
}

/** A held lock; releasing removes the file only while it is still ours. */
export interface HeldLock {
  release(): Promise<void>;
}

/** One attempt at the lock file `path`, breaking it first if its owner is dead; null when busy. */
export async function tryLock(path: string): Promise<HeldLock | null> {
  const mine = `${process.pid} ${randomBytes(16).toString('hex')}\n`;
  if (!createExclusive(path, mine)) {
    breakIfStale(path);
    if (!createExclusive(path, mine)) return null;
  }
  sweepLeftovers(path);
  let held = true;
  return {
    async release(): Promise<void> {
      if (!held) return;
      held = false;
      if (readOrNull(path) === mine) unlinkIfPresent(path);
    },
  };
}

/** Waits for the lock file `path`; throws LockBusyError after `timeoutMs`. */
export async function acquireLock(path: string, timeoutMs: number): Promise<HeldLock> {
  const deadline = Date.now() + timeoutMs;
  let delay = 1;
  for (;;) {
    const lock = await tryLock(path);
    if (lock) return lock;
    if (Date.now() > deadline) throw new LockBusyError(`lock ${path} is busy`);
    await sleep(delay);
    delay = Math.min(delay * 2, 50);
  }
}

/** Runs `work` holding the lock file `path`; throws LockBusyError after `timeoutMs`. */
export async function withLock<T>(path: string, timeoutMs: number, work: () => Promise<T>): Promise<T> {
  const lock = await acquireLock(path, timeoutMs);
  try {
    return await work();
  } finally {
    await lock.release();
  }
}
