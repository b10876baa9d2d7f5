import type { EntryBody } from './entry.js';

/**
 * Identical refusals within a window written as one entry with a count, so
 * a caller repeating a refused call costs dom0 one line per window, not one
 * per call. Nothing is dropped: a pending count is written when an entry of
 * another kind is appended through this process (so order against what was
 * done holds), when its window ends, when more keys are pending than the
 * bound, and at flush() (shutdown). Whether a refusal is pending depends
 * only on earlier refusals with the same members, that is on the caller's
 * own calls.
 */
export interface Aggregator {
  /** Counts one refusal; resolves at once unless an older count had to be written first. */
  add(body: EntryBody): Promise<void>;
  /** Writes every pending count; resolves once they are on disk. */
  flush(): Promise<void>;
  /** Refusals counted but not yet on disk. */
  pending(): number;
  /** Flushes and stops the window timer. */
  stop(): Promise<void>;
}

export interface AggregateOptions {
  /** Appends one entry standing for `count` refusals. */
  readonly write: (body: EntryBody, count: number) => Promise<unknown>;
  readonly windowMs: number;
  /** Distinct refusals pending at once; one more writes the oldest. */
  readonly maxKeys: number;
  /** Told when a pending count could not be written (it is then lost: the operator must know). */
  readonly onError: (err: unknown, body: EntryBody, count: number) => void;
  readonly now?: () => number;
}

interface Pending {
  readonly body: EntryBody;
  count: number;
  readonly since: number;
}

/** The members that make two refusals identical: everything but the correlation. */
function keyOf(b: EntryBody): string {
  return JSON.stringify([b.kind, b.principal, b.operation, b.qubes, b.keys, b.result, b.detail, b.truncated]);
}

export function refusalAggregator(opts: AggregateOptions): Aggregator {
  const now = opts.now ?? Date.now;
  const pending = new Map<string, Pending>();
  let total = 0;
  let timer: NodeJS.Timeout | null = null;
  // writes are chained so counts reach the log in the order they were taken out of the map
  let writing: Promise<void> = Promise.resolve();

  const writeOut = (p: Pending): Promise<void> => {
    total -= p.count;
    writing = writing.then(() => opts.write(p.body, p.count)).then(
      () => undefined,
      (err: unknown) => opts.onError(err, p.body, p.count),
    );
    return writing;
  };
  const take = (key: string): Promise<void> => {
    const p = pending.get(key);
    if (!p) return writing;
    pending.delete(key);
    return writeOut(p);
  };
  const flushDue = (): void => {
    timer = null;
    const t = now();
    for (const [key, p] of pending) if (t - p.since >= opts.windowMs) void take(key);
    arm();
  };
  const arm = (): void => {
    if (timer !== null || pending.size === 0) return;
    const oldest = Math.min(...[...pending.values()].map((p) => p.since));
    timer = setTimeout(flushDue, Math.max(0, oldest + opts.windowMs - now()));
    timer.unref();
  };
  const flush = async (): Promise<void> => {
    for (const key of [...pending.keys()]) void take(key);
    await writing;
  };

  return {
    async add(body) {
      const key = keyOf(body);
      const t = now();
      const p = pending.get(key);
      total += 1;
      if (p && t - p.since < opts.windowMs) {
        p.count += 1;
        return;
      }
      // the map changes before any await, so concurrent refusals never both start a count for one key
      const out = p ?? (pending.size >= opts.maxKeys ? pending.get(pending.keys().next().value as string) : undefined);
      const written = out ? take(keyOf(out.body)) : null;
      pending.set(key, { body, count: 1, since: t });
      arm();
      if (written) await written;
    },
    flush,
    pending: () => total,
    async stop() {
      if (timer !== null) clearTimeout(timer);
      timer = null;
      await flush();
    },
  };
}
