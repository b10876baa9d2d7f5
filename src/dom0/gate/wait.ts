/**
 * A gated call waiting for the operator. It polls for the answer (no file
 * watching: it must work the same on every file system) and writes a
 * newline to the caller every two seconds: the principal's JSON reader skips
 * it, and once the caller is gone qrexec has shut the service's stdout, so
 * the write fails and the request is withdrawn.
 */
import { setTimeout as delay } from 'node:timers/promises';

export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

export const REAL_CLOCK: Clock = { now: () => Date.now(), sleep: (ms) => delay(ms) };

export const POLL_MS = 200;
export const KEEPALIVE_MS = 2_000;

export interface WaitDeps<A> {
  readonly clock: Clock;
  /** The answer if one came, else null. */
  readonly poll: () => Promise<A | null>;
  /** Writes the keepalive; resolves false when the caller is gone. */
  readonly keepalive: () => Promise<boolean>;
  /** Aborted when the service is told to stop (SIGTERM, SIGHUP). */
  readonly stop?: AbortSignal;
}

export type WaitEnd<A> = { readonly end: 'answered'; readonly answer: A } | { readonly end: 'lapsed' | 'withdrawn' };

/** Waits until an answer, the deadline (a clock time), the caller's going, or a stop. */
export async function waitForAnswer<A>(deps: WaitDeps<A>, deadline: number): Promise<WaitEnd<A>> {
  const { clock } = deps;
  let nextKeepalive = clock.now() + KEEPALIVE_MS;
  for (;;) {
    if (deps.stop?.aborted) return { end: 'withdrawn' };
    const answer = await deps.poll();
    if (answer !== null) return { end: 'answered', answer };
    const now = clock.now();
    if (now >= deadline) return { end: 'lapsed' };
    if (now >= nextKeepalive) {
      if (!(await deps.keepalive())) return { end: 'withdrawn' };
      nextKeepalive = now + KEEPALIVE_MS;
    }
    await clock.sleep(Math.max(1, Math.min(POLL_MS, deadline - now)));
  }
}
