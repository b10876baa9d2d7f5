/** Composed operations: made of model operations, their own effect columns, no effect on the model hash. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { OPERATIONS } from '../../src/shared/model/capabilities.js';
import { COMPOSITIONS, composition, effectsOf } from '../../src/shared/model/compositions.js';
import { annotationsFor } from '../../src/principal/operations.js';
import { TOOLS } from '../../src/principal/tools/index.js';

test('every composition is made of model operations and is not one itself', () => {
  const ids = new Set(OPERATIONS.map((o) => o.id));
  for (const c of COMPOSITIONS) {
    assert.ok(!ids.has(c.id), c.id);
    assert.ok(ids.has(c.listedAfter), c.id);
    for (const o of c.operations) assert.ok(ids.has(o), `${c.id} uses ${o}`);
  }
});

test('the one-shot disposable tool takes its annotations from its own row, not from run', () => {
  const oneShot = TOOLS.find((t) => t.name === 'qube_run_disposable');
  assert.ok(oneShot);
  const row = composition(oneShot.operation);
  assert.ok(row);
  assert.deepEqual(row.operations, ['disposable', 'start', 'run', 'kill', 'remove']);
  assert.deepEqual(annotationsFor(oneShot.operation, 't'), {
    title: 't',
    readOnlyHint: false,
    destructiveHint: false,
    idempotentHint: false,
    openWorldHint: true,
  });
  assert.notDeepEqual(effectsOf(oneShot.operation), effectsOf('run'));
  assert.throws(() => effectsOf('no-such-operation'));
});
