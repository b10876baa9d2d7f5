/** Runs the scenarios in order, cleans up the fixtures, and says what the exit status is. */
import type { Caller } from './caller.js';
import { Context } from './context.js';
import type { Outcome, Scenario, SelftestOptions } from './context.js';
import { cleanUp, createRules, tombstones } from './fixture-scenarios.js';
import { gate } from './gate-scenario.js';
import { redaction, tiers, uniformRefusals, visibility } from './read-scenarios.js';

/** Creation runs before tiers and the gate, so both can use a fixture. */
export const SCENARIOS: readonly Scenario[] = [visibility, uniformRefusals, redaction, createRules, tiers, gate, tombstones];

export const EXIT_ALL_PASS = 0;
export const EXIT_SOME_FAIL = 1;
export const EXIT_INCOMPLETE = 3;

export interface SelftestReport {
  readonly results: readonly ({ readonly id: string } & Outcome)[];
  readonly fixtures: { readonly removed: readonly string[]; readonly left: readonly string[] };
  readonly exitStatus: number;
}

/** Any failure fails the run; otherwise anything not run leaves it incomplete (never a pass). */
export function exitStatusOf(results: readonly Outcome[]): number {
  if (results.some((r) => r.verdict === 'FAIL')) return EXIT_SOME_FAIL;
  if (results.some((r) => r.verdict !== 'PASS')) return EXIT_INCOMPLETE;
  return EXIT_ALL_PASS;
}

export async function runSelftest(caller: Caller, options: SelftestOptions, scenarios: readonly Scenario[] = SCENARIOS): Promise<SelftestReport> {
  const ctx = new Context(caller, options);
  const results: ({ id: string } & Outcome)[] = [];
  let fixtures: SelftestReport['fixtures'] = { removed: [], left: [] };
  try {
    for (const s of scenarios) {
      let outcome: Outcome;
      try {
        outcome = await s.run(ctx);
      } catch (e) {
        // a scenario that broke proved nothing either way
        outcome = { verdict: 'FAIL', reason: `the scenario broke: ${(e as Error).message}` };
      }
      results.push({ id: s.id, ...outcome });
    }
  } finally {
    fixtures = await cleanUp(ctx);
  }
  return { results, fixtures, exitStatus: exitStatusOf(results) };
}

/** The report as a person reads it. */
export function formatReport(report: SelftestReport): string {
  const lines = report.results.map((r) => `${r.verdict.padEnd(8)} ${r.id.padEnd(17)} ${r.reason}`);
  const count = (v: string): number => report.results.filter((r) => r.verdict === v).length;
  lines.push('');
  lines.push(`${count('PASS')} passed, ${count('FAIL')} failed, ${count('NOT-RUN')} not run (not run is not a pass)`);
  const { removed, left } = report.fixtures;
  if (removed.length > 0) {
    lines.push(`fixtures removed: ${removed.join(', ')}; they are tombstones now: the operator reaps or restores them with \`qmcp dom0 tombstones\``);
  }
  if (left.length > 0) {
    lines.push(`fixtures left in place: ${left.join(', ')}; they are the self-test's own qubes: remove them in dom0 with \`qvm-remove NAME\`, or run the self-test again and allow their removal`);
  }
  return lines.join('\n') + '\n';
}
