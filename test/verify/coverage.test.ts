/**
 * verify covers the capability model: every operation has a malformed
 * grammar, a noninterference call, a sequence step and, where timing
 * applies, a timing form. A fixture operation added in one place (the
 * model; test/model/one-place.test.ts shows the rest of the tree pick it
 * up) makes each check's run fail naming it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OPERATIONS } from '../../src/shared/model/capabilities.js';
import type { Check } from '../../verify/check.js';
import { verifyCoverage } from '../../verify/coverage.js';
import { makeMalformedCheck } from '../../verify/malformed/check.js';
import { GRAMMARS, TARGET_GRAMMARS, malformedGaps } from '../../verify/malformed/grammar.js';
import { CALLS, noninterferenceGaps } from '../../verify/noninterference/calls.js';
import { makeNoninterferenceCheck } from '../../verify/noninterference/check.js';
import { makeSequencesCheck } from '../../verify/sequences/check.js';
import { STEPS, sequencesGaps } from '../../verify/sequences/ops.js';
import { makeTimingCheck } from '../../verify/timing/check.js';
import { timingApplies, timingGaps } from '../../verify/timing/forms.js';
import { PAUSE_DOM0, WITH_PAUSE_DOM0 } from '../model/pause-dom0.js';

const PIECES = { malformed: 'malformed grammar', noninterference: 'noninterference call', sequences: 'sequence step', timing: 'timing form' } as const;

function without<T>(list: Readonly<Record<string, T>>, id: string): Record<string, T> {
  assert.ok(Object.hasOwn(list, id), id);
  return Object.fromEntries(Object.entries(list).filter(([k]) => k !== id));
}

test('verify covers every operation of the model', () => {
  assert.deepEqual(verifyCoverage(), []);
});

test('timing applies to every operation that names a qube: all but the read-only dom0 services without a qube argument', () => {
  assert.deepEqual(
    OPERATIONS.filter((o) => !timingApplies(o)).map((o) => o.id),
    ['list', 'device.list', 'pool.figures', 'tombstone.list', 'events', 'plan.status'],
  );
  assert.ok(timingApplies(PAUSE_DOM0));
});

test('a dom0 operation added to the model alone is named by every piece verify lacks for it', () => {
  assert.deepEqual(
    verifyCoverage(WITH_PAUSE_DOM0),
    Object.values(PIECES).map((piece) => `pause.dom0 (qmcp.Pause): no ${piece}`),
  );
});

test('each check fails its run on that model, naming the operation and what its list lacks', async () => {
  const checks: [Check, string][] = [
    [makeMalformedCheck({ ops: WITH_PAUSE_DOM0 }), PIECES.malformed],
    [makeNoninterferenceCheck({ ops: WITH_PAUSE_DOM0 }), PIECES.noninterference],
    [makeSequencesCheck({ ops: WITH_PAUSE_DOM0 }), PIECES.sequences],
    [makeTimingCheck({ ops: WITH_PAUSE_DOM0 }), PIECES.timing],
  ];
  for (const [check, piece] of checks) {
    const r = await check.run({ scale: 1 }, 1);
    assert.deepEqual(
      r.failures.map((f) => [f.check, f.what]),
      [[check.name, `coverage: pause.dom0 (qmcp.Pause): no ${piece}`]],
    );
  }
});

test('a list that loses an entry fails naming the operation', () => {
  assert.deepEqual(malformedGaps(OPERATIONS, without(GRAMMARS, 'info')), ['info (qmcp.Info): no malformed grammar']);
  assert.deepEqual(malformedGaps(OPERATIONS, GRAMMARS, without(TARGET_GRAMMARS, 'pause')), ['pause (admin.vm.Pause): no malformed target grammar']);
  assert.deepEqual(noninterferenceGaps(OPERATIONS, without(CALLS, 'file.write')), ['file.write (qmcp.WriteFile): no noninterference call']);
  assert.deepEqual(sequencesGaps(OPERATIONS, without(STEPS, 'events')), ['events (qmcp.Events): no sequence step']);
  // a dom0 service's timing form comes from its grammar: none, or one that names no qube, is a gap
  assert.deepEqual(timingGaps(OPERATIONS, without(GRAMMARS, 'remove')), ['remove (qmcp.Remove): no timing form']);
  const blind = { ...GRAMMARS, info: { ...(GRAMMARS['info'] as NonNullable<(typeof GRAMMARS)['info']>), argument: 'none' as const } };
  assert.deepEqual(timingGaps(OPERATIONS, blind), ['info (qmcp.Info): no timing form']);
});

test('an entry for no operation of its kind fails naming it', () => {
  assert.deepEqual(noninterferenceGaps(OPERATIONS, { ...CALLS, 'pause.dom0': CALLS['start'] as NonNullable<(typeof CALLS)['start']> }), ['pause.dom0: a noninterference call for no operation of the model it applies to']);
  // a dom0 service's grammar filed as a target grammar
  assert.deepEqual(malformedGaps(OPERATIONS, GRAMMARS, { ...TARGET_GRAMMARS, info: TARGET_GRAMMARS['state'] as NonNullable<(typeof TARGET_GRAMMARS)['state']> }), ['info: a malformed target grammar for no operation of the model it applies to']);
});
