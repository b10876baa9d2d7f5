// Weakened policy engines for test/verify/timing-targets.test.ts, as modules:
// the timing check loads its engine in processes of its own, by file and export.
import { RulePolicy } from '../../src/shared/policy/evaluate.js';
import { loadPolicyFromRoot } from '../../src/shared/policy/index.js';
import type { Policy, SystemInfo } from '../../src/shared/policy/index.js';

/** Whether X of `@dispvm:X` is a disposable template, looked up as cheaply for any X. */
function isTemplate(system: SystemInfo, x: string): boolean {
  const byUuid = Object.values(system.domains).filter((d) => `uuid:${d.uuid}` === x);
  return (system.domains[x] ?? byUuid[0])?.template_for_dispvms === true;
}

/**
 * The early return put back: an engine with no rules refuses an unfit
 * template with the same answer after the same index and checks, and no
 * scan of the rules.
 */
export function early(root: string): Policy {
  const real = loadPolicyFromRoot(root);
  const noRules = new RulePolicy([]);
  return {
    evaluate(req, system) {
      const unfit = req.target.startsWith('@dispvm:') && !isTemplate(system, req.target.slice(8));
      return (unfit ? noRules : real).evaluate(req, system);
    },
  };
}

/** An engine that looks twice at a target that exists. */
export function twice(root: string): Policy {
  const real = loadPolicyFromRoot(root);
  return {
    evaluate(req, system) {
      if (req.target in system.domains) real.evaluate(req, system);
      return real.evaluate(req, system);
    },
  };
}
