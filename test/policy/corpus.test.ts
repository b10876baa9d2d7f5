// qrexec's own answers for the corpus, recorded by scripts/policy-parser-check,
// must come out of the engine unchanged.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fleetSystemInfo, parseFleet } from '../../src/cli/fleet-system-info.js';
import type { Resolution } from '../../src/shared/policy/index.js';
import { loadPolicyFromRoot, PolicySyntaxError } from '../../src/shared/policy/index.js';
import type { Row } from './corpus.js';
import { loadCases, materialise, removeRoot } from './corpus.js';

function row(r: Resolution): Row {
  switch (r.action) {
    case 'deny':
      return ['deny', r.notify];
    case 'ask':
      return ['ask', r.defaultTarget, r.targets, r.user, r.autostart, r.notify];
    case 'allow':
      return ['allow', r.target, r.user, r.autostart, r.notify];
  }
}

const cases = loadCases();

test('the corpus has recorded answers', () => {
  assert.ok(cases.length > 40);
  for (const c of cases) assert.ok(c.expect !== undefined, `${c.name} has no recorded answers`);
});

for (const c of cases) {
  test(`corpus: ${c.name}`, () => {
    const system = fleetSystemInfo(parseFleet(JSON.parse(readFileSync(c.fleet, 'utf8'))));
    const root = materialise(c.files);
    try {
      if (typeof c.expect === 'string') {
        assert.throws(() => loadPolicyFromRoot(root), PolicySyntaxError);
        return;
      }
      const policy = loadPolicyFromRoot(root);
      const expect = c.expect ?? [];
      assert.equal(expect.length, c.queries.length);
      c.queries.forEach((q, i) => {
        const got = row(policy.evaluate({ service: q.service, argument: q.arg, source: q.source, target: q.target }, system));
        assert.deepEqual(got, expect[i], `${JSON.stringify(q)}`);
      });
    } finally {
      removeRoot(root);
    }
  });
}
