/**
 * One verification check: attacks one part of the boundary at a budget and a
 * seed, and reports what it tried and what failed. `npm test` runs each at a
 * small fixed budget and seed (test/verify); `npm run verify` at a larger one.
 */

/** How much work a check may do; each check scales its own counts from `scale`. */
export interface Budget {
  /** 1 is the small fixed budget of `npm test`; `npm run verify` defaults higher. */
  readonly scale: number;
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
