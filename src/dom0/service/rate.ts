/**
 * The per-caller rate limit (a token bucket), checked before any other
 * work: a call over it gets the uniform refusal without a qubesd read, a
 * settings check or a policy decision. A bucket holds only its own caller's
 * calls and the clock, so one call's admission never depends on anything
 * about another qube (SPEC §4 noninterference).
 *
 * The resident service keeps the buckets in memory; the per-call
 * executable keeps each caller's bucket in a small file under a lock, with
 * the count of calls it refused since it last wrote them to the audit log
 * (a per-call process cannot hold a count across calls otherwise). Such a
 * count is due at the caller's next admitted call, at a refused one past
 * the window, and, past the window, at any admitted call from anyone
 * (overdue()), so a caller that stops calling leaves no count behind.
 */
import { mkdirSync } from 'node:fs';
import { readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { RateSettings } from '../../shared/model/settings.js';
import { withLock } from '../lockfile.js';

export interface Bucket {
  readonly tokens: number;
  /** ms since the epoch of the last refill. */
  readonly at: number;
}

/** The bucket refilled for the time since `at`; a clock that went back refills nothing. No bucket is a full one. */
function refill(bucket: Bucket | undefined, now: number, rate: RateSettings): Bucket {
  if (!bucket) return { tokens: rate.burst, at: now };
  const elapsed = Math.max(0, now - bucket.at);
  return { tokens: Math.min(rate.burst, bucket.tokens + (elapsed * rate.perSecond) / 1000), at: Math.max(now, bucket.at) };
}

/** Refills, then takes a token if one is there. */
export function takeToken(bucket: Bucket | undefined, now: number, rate: RateSettings): { bucket: Bucket; admit: boolean } {
  const { tokens, at } = refill(bucket, now, rate);
  return tokens >= 1 ? { bucket: { tokens: tokens - 1, at }, admit: true } : { bucket: { tokens, at }, admit: false };
}

export interface RateDecision {
  readonly admit: boolean;
  /**
   * Calls refused by the limit that are now due to be written to the audit
   * log as one entry (the per-call mode's count); 0 when there are none or
   * an aggregator in this process counts them.
   */
  readonly due: number;
}

/** A caller's refusals counted past the window, now taken out of its bucket to be written. */
export interface Overdue {
  readonly caller: string;
  readonly count: number;
}

export interface RateLimiter {
  take(caller: string): Promise<RateDecision>;
  /** Takes every count whose window has passed (the per-call mode's; the resident's aggregator has a timer). */
  overdue?(): Promise<readonly Overdue[]>;
}

/**
 * A full bucket is the same as none, so those are dropped once more callers
 * than this have buckets: memory stays bounded by the callers qrexec can
 * name that are actually being limited.
 */
const MAX_BUCKETS = 1024;

export function memoryRateLimiter(rate: RateSettings, now: () => number = Date.now): RateLimiter {
  const buckets = new Map<string, Bucket>();
  return {
    async take(caller) {
      const t = now();
      const { bucket, admit } = takeToken(buckets.get(caller), t, rate);
      buckets.set(caller, bucket);
      if (buckets.size > MAX_BUCKETS) {
        for (const [name, b] of buckets) if (refill(b, t, rate).tokens >= rate.burst) buckets.delete(name);
      }
      return { admit, due: 0 };
    },
  };
}

/** A caller name that is safe as a file name; qrexec names qubes this way. */
const CALLER = /^[a-zA-Z][a-zA-Z0-9_.-]{0,63}$/;

interface FileState extends Bucket {
  /** Calls refused by the limit not yet in the audit log, and since when. */
  readonly refused: number;
  readonly since: number;
}

function parseState(text: string): FileState | null {
  try {
    const o = JSON.parse(text) as Record<string, unknown>;
    const nums = [o['tokens'], o['at'], o['refused'], o['since']];
    if (!nums.every((n) => typeof n === 'number' && Number.isFinite(n) && n >= 0)) return null;
    return o as unknown as FileState;
  } catch {
    return null;
  }
}

export interface FileRateOptions {
  /** The directory of the bucket files (var/lib/qmcp/rate under the root). */
  readonly dir: string;
  /** How long refused calls are counted before the next one writes them. */
  readonly windowMs: number;
  readonly lockTimeoutMs: number;
  readonly now?: () => number;
}

/**
 * One bucket file per caller. A missing file is a full bucket; an
 * unreadable one an empty bucket (it refills; a misread never grants more).
 * A busy lock past its bound, or a caller name unfit for a file, is refused.
 */
export function fileRateLimiter(rate: RateSettings, opts: FileRateOptions): RateLimiter {
  const now = opts.now ?? Date.now;
  /** Runs CHANGE on CALLER's state under its lock and writes what it returns (null: nothing changed). */
  const update = async <T>(caller: string, change: (state: FileState | undefined, t: number) => { next: FileState | null; out: T }): Promise<T> => {
    const path = join(opts.dir, caller);
    return withLock(`${path}.lock`, opts.lockTimeoutMs, async () => {
      const t = now();
      let state: FileState | undefined;
      try {
        state = parseState(await readFile(path, 'utf8')) ?? { tokens: 0, at: t, refused: 0, since: t };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
      const { next, out } = change(state, t);
      if (next === null) return out;
      await writeFile(`${path}.tmp`, JSON.stringify(next), { mode: 0o600 });
      await rename(`${path}.tmp`, path);
      return out;
    });
  };
  const windowPassed = (s: FileState, t: number): boolean => s.refused > 0 && t - s.since >= opts.windowMs;
  return {
    async take(caller) {
      if (!CALLER.test(caller)) return { admit: false, due: 0 };
      mkdirSync(opts.dir, { recursive: true, mode: 0o700 });
      try {
        return await update(caller, (state, t) => {
          const { bucket, admit } = takeToken(state, t, rate);
          let refused = (state?.refused ?? 0) + (admit ? 0 : 1);
          let since = refused === 1 && !admit ? t : (state?.since ?? t);
          // the count is written by the next admitted call, or by a refused one once the window has passed
          let due = 0;
          if (refused > 0 && (admit || t - since >= opts.windowMs)) {
            due = refused;
            refused = 0;
            since = t;
          }
          return { next: { tokens: bucket.tokens, at: bucket.at, refused, since }, out: { admit, due } };
        });
      } catch {
        return { admit: false, due: 0 };
      }
    },
    async overdue() {
      let names: string[];
      try {
        names = await readdir(opts.dir);
      } catch {
        return [];
      }
      const out: Overdue[] = [];
      for (const caller of names.filter((n) => CALLER.test(n) && !n.endsWith('.lock') && !n.endsWith('.tmp'))) {
        try {
          // files are replaced whole, so a read without the lock shows a state some call wrote; the lock is taken only to take a count
          const seen = parseState(await readFile(join(opts.dir, caller), 'utf8'));
          if (seen === null || !windowPassed(seen, now())) continue;
          const count = await update(caller, (state, t) =>
            state !== undefined && windowPassed(state, t) ? { next: { tokens: state.tokens, at: state.at, refused: 0, since: t }, out: state.refused } : { next: null, out: 0 },
          );
          if (count > 0) out.push({ caller, count });
        } catch {
          // a busy or vanished bucket keeps its count for a later call
        }
      }
      return out;
    },
  };
}
