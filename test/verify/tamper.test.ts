import { test } from 'node:test';
import assert from 'node:assert/strict';
import { verifyAudit } from '../../src/dom0/audit/index.js';
import { makeTamperCheck, tamperCheck } from '../../verify/tamper/check.js';

const SEED = 4242;

test('every generated tampering of the log, its rotated files and witness is detected', async () => {
  const report = await tamperCheck.run({ scale: 1 }, SEED);
  assert.deepEqual(report.failures, []);
  const figure = (label: string): number => Number(report.figures.find((f) => f.label === label)?.value);
  assert.ok(figure('tampering cases') >= 100);
  assert.ok(figure('tampering classes') >= 15);
  assert.ok(figure('log files (rotated + live)') >= 3);
});

test('a verify that skips the witness is caught missing a truncated tail', async () => {
  const blind = makeTamperCheck({ verify: (o) => verifyAudit({ ...o, witness: null }) });
  const report = await blind.run({ scale: 1 }, SEED);
  assert.equal(report.failures.length, 1);
  const [f] = report.failures;
  assert.match(f?.what ?? '', /tampering not detected/);
  assert.match(f?.reproduction ?? '', /--seed 4242 .*--only tamper; shrunk case \{"kind":/);
});

test('a verify that ignores deleted lines is caught', async () => {
  const lax = makeTamperCheck({
    verify: async (o) => {
      const r = await verifyAudit(o);
      const problems = r.problems.filter((p) => !/missing/.test(p.what));
      return { ...r, problems, valid: problems.length === 0 };
    },
  });
  const report = await lax.run({ scale: 1 }, SEED);
  assert.equal(report.failures.length, 1);
});
