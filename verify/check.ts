/**
 * One verification check: attacks one part of the boundary at a budget and a
 * seed, and reports what it tried and what failed. `npm test` runs each at a
 * small fixed budget and seed (test/verify); `npm run verify` at a larger one.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The entry that runs one check in a process of its own (verify/check-main.ts). */
export const CHECK_MAIN = join(dirname(fileURLToPath(import.meta.url)), 'check-main.js');

/** How much work a check may do; each check scales its own counts from `scale`. */
export interface Budget {
  /** 1 is the small fixed budget of `npm test`; `npm run verify` defaults higher. */
  readonly scale: number;
  /** A line on how far a long check has come; the run shows it on stderr. */
  readonly progress?: (line: string) => void;
}

/** A broken invariant, with what it takes to see it again. */
export interface Failure {
  readonly check: string;
  readonly what: string;
  /** The seed, the shrunk sequence, the machines: whatever reproduces it. */
  readonly reproduction: string;
}

/** One row of the final table, e.g. {label: 'machines compared', value: '40'}. */
export interface Figure {
  readonly label: string;
  readonly value: string;
}

/**
 * A count that is `small` at scale 1 (the fixed budget of `npm test`) and
 * `perScale × scale` above it: the full budget grows from the first step,
 * so `npm run verify`'s default scale 10 does `10 × perScale`.
 */
export function budgetCount(scale: number, small: number, perScale: number): number {
  return scale <= 1 ? small : perScale * scale;
}

/**
 * Runs `work(0..count-1)` at most `limit` at a time and resolves once all
 * are done, with their results in order; a rejection is thrown once the
 * others have settled.
 */
export async function bounded<T>(count: number, limit: number, work: (i: number) => Promise<T>): Promise<T[]> {
  const out = new Array<T>(count);
  const errors: unknown[] = [];
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < count) {
      const i = next++;
      try {
        out[i] = await work(i);
      } catch (err) {
        errors.push(err);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, count)) }, lane));
  if (errors.length > 0) throw errors[0];
  return out;
}

export interface CheckReport {
  readonly figures: readonly Figure[];
  readonly failures: readonly Failure[];
}

export interface Check {
  /** Short id, e.g. 'noninterference'. */
  readonly name: string;
  readonly summary: string;
  run(budget: Budget, seed: number): Promise<CheckReport>;
}

/** The report of a check that could not finish: one failure saying why, with the run that reproduces it. */
export function crashReport(check: string, what: string, seed: number, scale: number): CheckReport {
  return { figures: [], failures: [{ check, what, reproduction: `--seed ${seed} --scale ${scale} --only ${check}` }] };
}
