// Weakened policy engines the timing check must catch, each timed on its own
// paths only (test/verify/timing.test.ts times every path once at scale 1).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RulePolicy } from '../../src/shared/policy/evaluate.js';
import type { Policy, SystemInfo } from '../../src/shared/policy/index.js';
import { THRESHOLD, makeTimingCheck } from '../../verify/timing/check.js';

const SEED = 8086;

const SEATS = ['mcp-control', 'ai-box'];

/** Whether X of `@dispvm:X` is a disposable template, looked up as cheaply for any X. */
function isTemplate(system: SystemInfo, x: string): boolean {
  const byUuid = Object.values(system.domains).filter((d) => `uuid:${d.uuid}` === x);
  return (system.domains[x] ?? byUuid[0])?.template_for_dispvms === true;
}

test('an engine that refuses an unfit @dispvm:NAME before matching shows up over the threshold', async () => {
  // The early return put back: an engine with no rules refuses an unfit template with the same
  // answer after the same index and checks, and no scan of the rules.
  const early = (real: Policy): Policy => {
    const noRules = new RulePolicy([]);
    return {
      evaluate(req, system) {
        const unfit = req.target.startsWith('@dispvm:') && !isTemplate(system, req.target.slice(8));
        return (unfit ? noRules : real).evaluate(req, system);
      },
    };
  };
  const paths = SEATS.map((s) => `policy @dispvm:NAME from ${s}`);
  // The leak is a scan of the rules, a few microseconds: 10,000 evaluations a class keep |t|
  // above 10 while the suite's other files (and more) load both cores.
  const report = await makeTimingCheck({ paths, policy: early }).run({ scale: 10 }, SEED);
  assert.deepEqual(report.failures, []);
  for (const p of paths) {
    const t = Number(report.figures.find((f) => f.label === `|t| ${p}`)?.value);
    assert.ok(t > THRESHOLD, `${p}: |t| ${t}`);
  }
});

test('an engine that looks twice at a target that exists shows up over the threshold', async () => {
  const twice = (real: Policy): Policy => ({
    evaluate(req, system) {
      if (req.target in system.domains) real.evaluate(req, system);
      return real.evaluate(req, system);
    },
  });
  const paths = SEATS.map((s) => `policy name from ${s}`);
  const report = await makeTimingCheck({ paths, policy: twice }).run({ scale: 1 }, SEED);
  for (const p of paths) {
    const t = Number(report.figures.find((f) => f.label === `|t| ${p}`)?.value);
    assert.ok(t > THRESHOLD, `${p}: |t| ${t}`);
  }
});
