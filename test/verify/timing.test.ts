import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ServiceRefusal } from '../../src/dom0/service/refusal.js';
import type { ServiceSpec } from '../../src/dom0/service/run.js';
import type { CheckReport } from '../../verify/check.js';
import { THRESHOLD, makeTimingCheck, timingCheck } from '../../verify/timing/check.js';
import { welch } from '../../verify/timing/measure.js';

const SEED = 8086;

let run: Promise<CheckReport> | null = null;
/** One run for the tests below. */
function shared(): Promise<CheckReport> {
  run ??= timingCheck.run({ scale: 1 }, SEED);
  return run;
}

test("Welch's t is measured for every path that takes a qube (reported, not asserted)", async () => {
  const report = await shared();
  assert.deepEqual(report.failures, []);
  const paths = report.figures.filter((f) => f.label.startsWith('|t| '));
  for (const s of ['qmcp.Info', 'qmcp.Start', 'qmcp.Remove', 'qmcp.Clone', 'qmcp.Create', 'qmcp.SetProperty', 'qmcp.DeviceAttach']) {
    assert.ok(paths.some((f) => f.label === `|t| ${s}`), s);
  }
  assert.ok(paths.some((f) => f.label === '|t| policy qmcp.Exec'));
  for (const seat of ['mcp-control', 'ai-box']) {
    for (const form of ['name', 'uuid:', '@dispvm:NAME', '@dispvm:uuid:', '@default', '@dispvm']) {
      assert.ok(paths.some((f) => f.label.startsWith(`|t| policy ${form} from ${seat}`)), `${form} from ${seat}`);
    }
    for (const form of ['name', '@dispvm:NAME']) assert.ok(paths.some((f) => f.label === `|t| router ${form} from ${seat}`), `router ${form} from ${seat}`);
    // Two names that both exist nowhere take the same steps: the method must read no difference
    // (test/verify/timing-measure.test.ts has the loop that read one).
    const control = paths.find((f) => f.label === `|t| policy name from ${seat}, two absent names (control)`);
    assert.ok(control, `control from ${seat}`);
    assert.ok(Number(control.value) < THRESHOLD, `control from ${seat}: |t| ${control.value}`);
  }
  assert.ok(paths.every((f) => Number.isFinite(Number(f.value))));
  assert.ok(Number(report.figures.find((f) => f.label === 'timed calls')?.value) > 3000);
});

test("Welch's t of two samples", () => {
  assert.equal(welch([1, 1, 1], [1, 1, 1]), 0);
  assert.ok(welch([10, 11, 12, 10, 11], [1, 2, 1, 2, 1]) > 10);
});

test('an Info that does extra work for a qube outside the umbrella shows up over the threshold', async () => {
  const weak = makeTimingCheck({
    paths: ['qmcp.Info'],
    table: (real) => {
      const info = real.get('qmcp.Info') as ServiceSpec<unknown>;
      const leaky: ServiceSpec<unknown> = {
        ...info,
        targets: () => [],
        // read as Info reads it, but not checked: the handler decides
        refers: (input) => [(input as { name: string }).name],
        async handle({ input, qubesd, snapshot }) {
          const name = (input as { name: string }).name;
          // The leak: a second look at a qube that exists.
          if (snapshot.any(name)) for (let i = 0; i < 100; i++) await qubesd.call('admin.vm.property.Get', name, 'label');
          throw new ServiceRefusal('not visible');
        },
      };
      return new Map([...real, ['qmcp.Info', leaky]]);
    },
  });
  // more calls than scale 1: the suite's other files load both cores meanwhile
  const report = await weak.run({ scale: 3 }, SEED);
  const t = Number(report.figures.find((f) => f.label === '|t| qmcp.Info')?.value);
  assert.ok(t > THRESHOLD, `|t| ${t}`);
  assert.equal(report.figures.find((f) => f.label.startsWith('paths over threshold'))?.value, '1');
});
