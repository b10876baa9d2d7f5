// qrexec's own answers for the corpus, recorded by scripts/policy-parser-check,
// must come out of the engine unchanged.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fleetSystemInfo, parseFleet } from '../../src/cli/fleet-system-info.js';
import type { Policy, Resolution, SystemInfo } from '../../src/shared/policy/index.js';
import { loadPolicyFromRoot, PolicySyntaxError } from '../../src/shared/policy/index.js';
import type { Case, Row } from './corpus.js';
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

/**
 * Whether the engine answers a recorded row. Where qrexec's parser raised, qrexec-daemon
 * refuses the call and nobody is notified (docs/policy-engine.md): a deny without
 * notification that no rule made.
 */
function answers(r: Resolution, recorded: Row): boolean {
  if (recorded[0] === 'error') return r.action === 'deny' && !r.notify && r.rule === null;
  return JSON.stringify(row(r)) === JSON.stringify(recorded);
}

function systemOf(c: Case): SystemInfo {
  return fleetSystemInfo(parseFleet(JSON.parse(readFileSync(c.fleet, 'utf8'))));
}

/** The queries whose answer differs from the recorded one; `wrap` stands a weakened engine in. */
function mismatches(c: Case, wrap: (p: Policy) => Policy = (p) => p): string[] {
  const system = systemOf(c);
  const root = materialise(c.files);
  try {
    const policy = wrap(loadPolicyFromRoot(root));
    const expect = c.expect as Row[];
    assert.equal(expect.length, c.queries.length, `${c.name}: one recorded row a query`);
    const out: string[] = [];
    c.queries.forEach((q, i) => {
      const recorded = expect[i] as Row;
      const got = policy.evaluate({ service: q.service, argument: q.arg, source: q.source, target: q.target }, system);
      if (!answers(got, recorded)) out.push(`${JSON.stringify(q)}: recorded ${JSON.stringify(recorded)}, engine ${JSON.stringify(got)}`);
    });
    return out;
  } finally {
    removeRoot(root);
  }
}

/**
 * Queries no real system asks: a source that is no qube (qrexec-daemon asks only for its own
 * qube's calls) or a default_dispvm that names no disposable template (qubesd keeps none).
 */
function unrealQueries(c: Case, system: SystemInfo): string[] {
  const out: string[] = [];
  const byUuid = new Map(Object.values(system.domains).map((d) => [`uuid:${d.uuid}`, d]));
  for (const source of new Set(c.queries.map((q) => q.source))) {
    if (!(source in system.domains) && !byUuid.has(source)) out.push(`source ${source} is no qube`);
  }
  for (const [name, d] of Object.entries(system.domains)) {
    if (d.default_dispvm !== null && system.domains[d.default_dispvm]?.template_for_dispvms !== true) {
      out.push(`default_dispvm of ${name} is ${d.default_dispvm}, no disposable template`);
    }
  }
  return out;
}

const cases = loadCases();
const recorded = cases.filter((c) => Array.isArray(c.expect));
const errorRows = (c: Case): number => (c.expect as Row[]).filter((r) => r[0] === 'error').length;

test('the corpus has recorded answers', () => {
  assert.ok(cases.length > 40);
  for (const c of cases) assert.ok(c.expect !== undefined, `${c.name} has no recorded answers`);
});

test('the corpus asks only what a real system asks', () => {
  for (const c of cases) assert.deepEqual(unrealQueries(c, systemOf(c)), [], c.name);
});

test('a source that is no qube, or a dangling default_dispvm, is not what a real system asks', () => {
  const c = cases.find((x) => x.name === 'dispvm-no-default') as Case;
  const system = systemOf(c);
  const vault = system.domains['vault'];
  assert.ok(vault);
  const dangling: SystemInfo = { domains: { ...system.domains, vault: { ...vault, default_dispvm: 'nosuch-dvm' } } };
  const stranger: Case = { ...c, queries: [...c.queries, { source: 'nonexistent', target: 'work', service: 'dv.d', arg: '' }] };
  assert.deepEqual(unrealQueries(c, dangling), ['default_dispvm of vault is nosuch-dvm, no disposable template']);
  assert.deepEqual(unrealQueries(stranger, system), ['source nonexistent is no qube']);
});

test('the corpus holds queries on which qrexec\'s parser raises', () => {
  assert.ok(recorded.reduce((n, c) => n + errorRows(c), 0) > 0);
});

for (const c of cases) {
  test(`corpus: ${c.name}`, () => {
    if (typeof c.expect === 'string') {
      const root = materialise(c.files);
      try {
        assert.throws(() => loadPolicyFromRoot(root), PolicySyntaxError);
      } finally {
        removeRoot(root);
      }
      return;
    }
    assert.deepEqual(mismatches(c).slice(0, 5), []);
  });
}

test('an engine that notifies when qrexec\'s evaluation fails is caught on exactly those queries', () => {
  const notifying = (real: Policy): Policy => ({
    evaluate(req, system) {
      const r = real.evaluate(req, system);
      return r.action === 'deny' && r.rule === null && !r.notify ? { ...r, notify: true } : r;
    },
  });
  const withErrors = recorded.filter((c) => errorRows(c) > 0);
  assert.ok(withErrors.length > 0);
  for (const c of withErrors) assert.equal(mismatches(c, notifying).length, errorRows(c), c.name);
});
