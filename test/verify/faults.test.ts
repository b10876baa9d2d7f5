import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Qubesd } from '../../src/dom0/qubesd.js';
import { faultsCheck, makeFaultsCheck } from '../../verify/faults/check.js';

const SEED = 31337;

test('faults at every step, in qubesd, in the service process and the audit disk leave nothing hidden or lost', async () => {
  const report = await faultsCheck.run({ scale: 1 }, SEED);
  assert.deepEqual(report.failures, []);
  const figure = (label: string): number => Number(report.figures.find((f) => f.label === label)?.value ?? 0);
  for (const op of ['create', 'create.disptemplate', 'disposable', 'clone']) {
    const steps = report.figures.find((f) => f.label.startsWith(`step faults: ${op} (`));
    assert.ok(steps && Number(steps.value) >= 6 && /created, hidden/.test(steps.label), op);
    assert.ok(figure(`qubesd faults: ${op}`) >= 3, op);
    assert.ok(figure(`killed service processes: ${op}`) >= 1, op);
  }
  assert.ok(figure('qubesd faults: remove') >= 3);
  assert.ok(figure('qubesd faults: restore') >= 3);
  assert.ok(figure('audit disk full') >= 8);
});

/** A qubesd whose Remove does nothing: a rollback that leaves the half-made qube behind. */
class NoRemove extends Qubesd {
  override async call(method: string, dest: string, arg = '', payload?: string | Buffer): Promise<string> {
    if (method === 'admin.vm.Remove') return '';
    return super.call(method, dest, arg, payload);
  }
}

test('a rollback that does not remove what it made is caught', async () => {
  const weak = makeFaultsCheck({ qubesd: (real) => new NoRemove(real.socketPath), kinds: ['steps'] });
  const report = await weak.run({ scale: 1 }, SEED);
  const hit = report.failures.find((f) => /left behind without the loud half-state/.test(f.what));
  assert.ok(hit, JSON.stringify(report.failures.slice(0, 3)));
  assert.match(hit.reproduction, /--seed 31337 --scale 1 --only faults/);
});
