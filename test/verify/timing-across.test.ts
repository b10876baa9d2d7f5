// The policy paths' statistic: a process is one sample, its difference of means.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { acrossT } from '../../verify/timing/across.js';
import { THRESHOLD } from '../../verify/timing/check.js';
import { welch } from '../../verify/timing/measure.js';

// Eight processes whose difference is a few ns either way (where the heap put the two objects),
// and eight where it is the same small difference every time (a step one class takes).
const FLIPPING = [4.1, -3.8, 5.2, -4.6, 3.9, -5.0, 4.4, -4.2];
const CONSISTENT = [1.1, 0.8, 1.3, 0.9, 1.2, 1.0, 0.7, 1.1];

test('differences whose sign changes from process to process read as nothing; one that keeps its sign is over the threshold', () => {
  assert.ok(Math.abs(acrossT(FLIPPING)) < 1, String(acrossT(FLIPPING)));
  assert.ok(acrossT(CONSISTENT) > THRESHOLD, String(acrossT(CONSISTENT)));
  assert.equal(acrossT([0, 0, 0]), 0);
});

test('weakened: pooling the processes as one sample of differences reads the flipping ones as a difference', () => {
  // What the check did in one process, many times over: each process's own t is large, whatever its sign.
  const within = FLIPPING.map((d) => Math.abs(welch([d, d + 0.1, d - 0.1, d + 0.05], [0, 0.1, -0.1, 0.05])));
  assert.ok(within.every((t) => t > THRESHOLD), within.join(' '));
});
