import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { sameState, stableJson } from '../../verify/malformed/host.js';

/** What stableJson stands for: JSON.stringify with each object's keys sorted (here by a replacer that rebuilds it). */
function reference(v: unknown): string {
  return JSON.stringify(v, (_k, value: unknown) => {
    if (value && typeof value === 'object' && !Array.isArray(value)) {
      return Object.fromEntries(Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    }
    return value;
  });
}

/** Keys that are no array index, whose order an object would otherwise choose itself. */
const key = fc.string().map((k) => `k${k}`);
const value = fc.letrec((tie) => ({
  any: fc.oneof(
    { depthSize: 'small' },
    fc.constant(null),
    fc.constant(undefined),
    fc.boolean(),
    fc.double(),
    fc.string(),
    fc.date({ noInvalidDate: true }),
    fc.uint8Array({ maxLength: 4 }).map((b) => Buffer.from(b)),
    fc.array(tie('any'), { maxLength: 4 }),
    fc.dictionary(key, tie('any'), { maxKeys: 4 }),
  ),
})).any;

test('stableJson prints what JSON.stringify prints with sorted keys, for every kind of value a state holds', () => {
  fc.assert(
    fc.property(value.filter((v) => v !== undefined), (v) => {
      assert.equal(stableJson(v), reference(v));
    }),
    { numRuns: 2000, seed: 20261204 },
  );
  // holes, functions and symbols as JSON.stringify has them
  const sparse: unknown[] = [];
  sparse[2] = 1;
  const odd = { b: [sparse, () => 1, Symbol('s')], a: { f: () => 1, s: Symbol('t'), u: undefined, n: Number.NaN } };
  assert.equal(stableJson(odd), '{"a":{"n":null},"b":[[null,null,1],null,null]}');
  assert.equal(stableJson(odd), reference(odd));
});

test('two states that differ print differently; key order does not count', () => {
  assert.equal(stableJson({ b: 1, a: [1, { d: 2, c: 3 }] }), stableJson({ a: [1, { c: 3, d: 2 }], b: 1 }));
  assert.notEqual(stableJson({ a: [1, 2] }), stableJson({ a: [2, 1] }));
  assert.notEqual(stableJson({ a: '1' }), stableJson({ a: 1 }));
});

test('two quick states are one machine exactly when their sorted forms are', () => {
  fc.assert(
    fc.property(value, value, (a, b) => {
      const [x, y] = [JSON.stringify({ a, b }), JSON.stringify({ b, a })];
      assert.equal(sameState(x, y), true);
      const z = JSON.stringify({ a, b: [b] });
      assert.equal(sameState(x, z), stableJson(JSON.parse(x)) === stableJson(JSON.parse(z)));
    }),
    { numRuns: 500, seed: 20261202 },
  );
  assert.equal(sameState('{"vms":[{"tags":["a"],"power":"Halted"}]}', '{"vms":[{"power":"Halted","tags":["a"]}]}'), true);
  assert.equal(sameState('{"vms":[{"tags":["a"],"power":"Halted"}]}', '{"vms":[{"power":"Running","tags":["a"]}]}'), false);
  assert.equal(sameState('{"vms":[{"tags":["a","b"]}]}', '{"vms":[{"tags":["b","a"]}]}'), false);
});
