import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isQubeName, qubeNameProblem } from '../../src/shared/names.js';

test('qube names Qubes accepts', () => {
  for (const name of ['work', 'ai-x', 'a', 'A1_b.c-d', 'x'.repeat(31), 'dm', 'sys-net']) {
    assert.equal(isQubeName(name), true, name);
    assert.equal(qubeNameProblem(name), null, name);
  }
});

test('qube names Qubes rejects, each with qubesd reason', () => {
  const cases: [string, string][] = [
    ['', 'VM name contains illegal characters'],
    ['x'.repeat(32), 'VM name must be shorter than 32 characters'],
    ['1abc', 'VM name cannot start with hyphen, underscore, dot or numbers'],
    ['-abc', 'VM name cannot start with hyphen, underscore, dot or numbers'],
    ['.abc', 'VM name cannot start with hyphen, underscore, dot or numbers'],
    ['a b', 'VM name contains illegal characters'],
    ['a+b', 'VM name contains illegal characters'],
    ['a@b', 'VM name contains illegal characters'],
    ['a/../b', 'VM name contains illegal characters'],
    ['a\0b', 'VM name contains illegal characters'],
    ['Domain-0', "VM name cannot be 'Domain-0'"],
    ['none', "VM name cannot be 'none' nor 'default'"],
    ['default', "VM name cannot be 'none' nor 'default'"],
    ['work-dm', 'VM name cannot end with -dm'],
  ];
  for (const [name, reason] of cases) {
    assert.equal(isQubeName(name), false, JSON.stringify(name));
    assert.equal(qubeNameProblem(name), reason, JSON.stringify(name));
  }
  for (const value of [undefined, null, 3, true, ['work'], { name: 'work' }]) assert.equal(isQubeName(value), false);
});
