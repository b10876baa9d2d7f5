import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ServiceSpec } from '../../src/dom0/service/run.js';
import { createService } from '../../src/dom0/services/create.js';
import { concurrencyCheck, makeConcurrencyCheck } from '../../verify/concurrency/check.js';

const SEED = 777;

test('parallel creates, clones and removes keep the cap, the names and the audit log', async () => {
  const report = await concurrencyCheck.run({ scale: 1 }, SEED);
  assert.deepEqual(report.failures, []);
  const figure = (label: string): number => Number(report.figures.find((f) => f.label === label)?.value);
  assert.ok(figure('concurrent runs') >= 15);
  assert.ok(figure('of them as service processes') > 0);
  assert.ok(figure('concurrent runs through the router') >= 3);
  assert.ok(figure('succeeded') > 0);
  assert.ok(figure('stopped at the budget edge') > 0, 'the rounds reach the cap');
});

test('creates without the budget lock are caught passing the cap', async () => {
  const weak = makeConcurrencyCheck({
    processes: false,
    table: (real, write) => {
      const unlocked = createService({ ...write, budgetLock: () => Promise.resolve({ release: () => Promise.resolve() }) });
      return new Map([...real, ['qmcp.Create', unlocked as unknown as ServiceSpec<unknown>]]);
    },
  });
  const report = await weak.run({ scale: 1 }, SEED);
  assert.ok(report.failures.some((f) => /over the cap/.test(f.what)), JSON.stringify(report.failures));
  assert.match(report.failures[0]?.reproduction ?? '', /--seed 777 --scale 1 --only concurrency/);
});

test('an audit log that drops outcomes is caught', async () => {
  const weak = makeConcurrencyCheck({
    processes: false,
    audit: (real) => ({ ...real, path: real.path, intent: (f) => real.intent(f), refusal: (f) => real.refusal(f), operator: (f) => real.operator(f), outcome: async (c, f) => (f.result === 'ok' ? real.outcome(c, f) : Promise.reject(new Error('dropped'))) }),
  });
  const report = await weak.run({ scale: 1 }, SEED);
  assert.ok(report.failures.some((f) => /intents without exactly one outcome/.test(f.what)), JSON.stringify(report.failures));
});

test('with resident dom0 services the check reads each racing create\'s status from its reply, and the rounds hold', async () => {
  // the resident reply's exit status is always 0 at qrexec's level: read as such, every create would look made
  const was = process.env['QMCP_DOM0_SERVICE_MODE'];
  process.env['QMCP_DOM0_SERVICE_MODE'] = 'resident';
  try {
    const report = await concurrencyCheck.run({ scale: 1 }, SEED);
    assert.deepEqual(report.failures, []);
    assert.ok(Number(report.figures.find((f) => f.label === 'concurrent runs through the router')?.value) >= 3);
  } finally {
    if (was === undefined) delete process.env['QMCP_DOM0_SERVICE_MODE'];
    else process.env['QMCP_DOM0_SERVICE_MODE'] = was;
  }
});
