// The flood check at the small budget, and the weakened residents it must
// catch: no rate limit (entries past what the rate allows), an aggregator
// that loses counts (the log's counts fall short of the calls refused), a
// prune without its checkpoint (the chain no longer verifies).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compiled, weakenedFile } from '../../verify/weakened-module.js';
import { floodCheck, makeFloodCheck } from '../../verify/flood/check.js';

/** A resident entry whose module `rel` has `guard` weakened, with every module on the way up importing the copy. */
function weakResident(rel: string, guard: string, weakened: string): string {
  const swap: Record<string, string> = { [compiled(rel)]: weakenedFile(rel, guard, weakened) };
  // a line each module has once, kept as it is: the copy differs only in what it imports
  const unique: Record<string, string> = {
    'dom0/audit/log': 'export function openAudit',
    'dom0/audit/index': "from './log.js';",
    'dom0/service/compose': 'export async function serveDom0Call',
    'dom0/resident-main': 'async function main(',
  };
  const carry = (up: string): string => (swap[compiled(up)] = weakenedFile(up, unique[up] as string, unique[up] as string, swap));
  if (rel.startsWith('dom0/audit/')) {
    if (rel !== 'dom0/audit/log') carry('dom0/audit/log');
    carry('dom0/audit/index');
  }
  if (rel !== 'dom0/service/compose') carry('dom0/service/compose');
  return carry('dom0/resident-main');
}

test('flood: the resident holds, counts every refusal, verifies and serves the legitimate call', async () => {
  const report = await floodCheck.run({ scale: 1 }, 1);
  assert.deepEqual(report.failures, []);
  assert.ok(report.figures.some((f) => /legitimate call/.test(f.label) && /^status 0/.test(f.value)));
});

test('flood: weakened residents are caught', async () => {
  const variants: [string, string, string, string, RegExp][] = [
    ['no rate limit', 'dom0/service/rate', 'return { admit, due: 0 };', 'return { admit: true, due: 0 };', /over the rate's bound/],
    ['counts dropped', 'dom0/audit/aggregate', 'p.count += 1;', '', /counts \d+ refusals for \d+ calls refused/],
    ['prune without checkpoint', 'dom0/audit/append', 'await writeEntry(options.logPath, entry);\n        head = { seq: entry.seq, hash: entry.hash };', '', /does not verify/],
  ];
  for (const [name, rel, guard, weakened, expected] of variants) {
    const report = await makeFloodCheck({ residentMain: weakResident(rel, guard, weakened) }).run({ scale: 1 }, 1);
    assert.ok(report.failures.some((f) => expected.test(f.what)), `${name}: ${JSON.stringify(report.failures)}`);
  }
});
