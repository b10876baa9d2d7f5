// Weakened policy engines the timing check must catch, each timed on its own
// paths only (test/verify/timing.test.ts times every path once at scale 1).
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { THRESHOLD, makeTimingCheck } from '../../verify/timing/check.js';
import type { EngineModule } from '../../verify/timing/policy-paths.js';
import { compiled, weakenedFile } from '../../verify/weakened-module.js';

const SEED = 8086;

const SEATS = ['mcp-control', 'ai-box'];

/** A weakened engine of test/verify/timing-engines.ts, by its export. */
const wrapper = (name: string): EngineModule => ({ file: fileURLToPath(new URL('./timing-engines.js', import.meta.url)), name });

/** The engine loaded by a copy of the policy modules whose tokens module has `guard` replaced by `weakened`. */
function weakenedTokens(guard: string, weakened: string): EngineModule {
  const tokens = weakenedFile('shared/policy/tokens', guard, weakened);
  const evaluate = weakenedFile('shared/policy/evaluate', 'export class RulePolicy', 'export class RulePolicy', { [compiled('shared/policy/tokens')]: tokens });
  const index = weakenedFile('shared/policy/index', 'export function loadPolicyFromRoot', 'export function loadPolicyFromRoot', { [compiled('shared/policy/evaluate')]: evaluate });
  return { file: index, name: 'loadPolicyFromRoot' };
}

/** Each path's |t| over the threshold, timed with `engine` alone. */
async function caught(what: string, engine: EngineModule, paths: string[]): Promise<void> {
  const report = await makeTimingCheck({ paths, engine }).run({ scale: 1 }, SEED);
  assert.deepEqual(report.failures, []);
  for (const p of paths) {
    const t = Number(report.figures.find((f) => f.label === `|t| ${p}`)?.value);
    assert.ok(t > THRESHOLD, `${what}, ${p}: |t| ${t}`);
  }
}

test('an engine that refuses an unfit @dispvm:NAME before matching shows up over the threshold', async () => {
  await caught('early', wrapper('early'), SEATS.map((s) => `policy @dispvm:NAME from ${s}`));
});

test('an engine that looks twice at a target that exists shows up over the threshold', async () => {
  await caught('twice', wrapper('twice'), SEATS.map((s) => `policy name from ${s}`));
});

// A few ns that keep their sign from process to process, among the other policy paths (each
// process times them all, whatever rows are reported).
// across 16 processes at scale 1 this catch is not reliable (|t| 0.67 in one full run); test/policy/paths.test.ts catches the same engine by what it reads, at every run
test('an engine whose absent target reads a stand-in of another shape shows up over the threshold', { skip: 'not reliable at scale 1 across processes; caught by test/policy/paths.test.ts' }, async () => {
  const literal = weakenedTokens('const seen = domain ?? NO_DOMAIN;', "const seen = domain ?? { type: '', tags: [], uuid: '' };");
  await caught('literal', literal, ['policy name from mcp-control']);
});
