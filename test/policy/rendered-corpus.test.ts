// The corpus cases of the rendered qmcp policy hold the rules renderPolicy() renders today
// for their settings, so a change of the renderer or the capability table cannot leave their
// recorded answers stale while the corpus stays green.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Settings } from '../../src/shared/model/index.js';
import { DEFAULT_SETTINGS, modelHash, parsePrincipals, POLICY_FILE, renderPolicies, renderPolicy } from '../../src/shared/model/index.js';
import type { Case } from './corpus.js';
import { loadCases } from './corpus.js';

const RERECORD =
  're-record: npm run build && node scripts/policy-parser-check/rendered-cases.js && ' +
  'scripts/policy-parser-check/check.sh QREXEC_CHECKOUT --record (docs/policy-engine.md)';

const POLICY_PATH = `etc/qubes/policy.d/${POLICY_FILE}`;

function settingsOf(overrides: Record<string, unknown>): Settings {
  return { ...structuredClone(DEFAULT_SETTINGS), ...overrides, model: modelHash() } as Settings;
}

/** The lines qrexec reads: comments (the model hash among them) and blank lines left out. */
function rules(lines: readonly string[]): string[] {
  return lines.filter((l) => l.trim() !== '' && !l.trimStart().startsWith('#'));
}

/** How the stored policy differs from today's rendering, or null when its rules are the same. */
function staleness(stored: readonly string[], settings: Settings): string | null {
  return differs(stored, renderPolicy(settings));
}

function differs(stored: readonly string[], text: string): string | null {
  const want = rules(text.split('\n'));
  const have = rules(stored);
  const n = Math.max(want.length, have.length);
  for (let i = 0; i < n; i++) {
    if (have[i] !== want[i]) {
      return `rule ${i + 1} of ${want.length}: stored ${JSON.stringify(have[i] ?? null)}, rendered today ${JSON.stringify(want[i] ?? null)}`;
    }
  }
  return null;
}

const rendered = loadCases().filter((c) => c.name.startsWith('qmcp-rendered-'));

function storedPolicy(c: Case): string[] {
  const lines = c.files[POLICY_PATH];
  assert.ok(lines, `${c.name} holds no ${POLICY_PATH}`);
  return lines;
}

test('the rendered cases cover both modes and say what they were rendered from', () => {
  assert.deepEqual(rendered.map((c) => c.settings?.['mode']).sort(), ['compat', 'least-privilege']);
});

for (const c of rendered) {
  test(`${c.name} holds the policy renderPolicy() renders today`, () => {
    const why = staleness(storedPolicy(c), settingsOf(c.settings ?? {}));
    assert.equal(why, null, `${c.name}: ${why}; ${RERECORD}`);
  });
}

test('a stale rendered case is caught: a rule changed, a rule gone, other settings', () => {
  const c = rendered.find((x) => x.settings?.['mode'] === 'least-privilege') as Case;
  const stored = storedPolicy(c);
  const settings = settingsOf(c.settings ?? {});
  const last = stored.length - 1 - [...stored].reverse().findIndex((l) => rules([l]).length === 1);
  const changed = stored.map((l, i) => (i === last ? l.replace(/ deny$/, ' allow') : l));
  assert.notDeepEqual(changed, stored);
  assert.match(staleness(changed, settings) ?? '', /rendered today/);
  assert.match(staleness(stored.filter((_, i) => i !== last), settings) ?? '', /stored null/);
  assert.notEqual(staleness(stored, settingsOf({ ...c.settings, mode: 'compat' })), null);
});

test('comment lines do not make a rendered case stale', () => {
  const c = rendered[0] as Case;
  const stored = storedPolicy(c).map((l) => (l.startsWith('#') ? `${l} (reworded)` : l));
  assert.equal(staleness(stored, settingsOf(c.settings ?? {})), null);
});

// the three-principal case keeps its whole list-form settings file
test('qmcp-principals holds the policy renderPolicies() renders today for its settings', () => {
  const c = loadCases().find((x) => x.name === 'qmcp-principals') as Case;
  const { principals, problems } = parsePrincipals({ ...c.settings, model: modelHash() });
  assert.deepEqual(problems, []);
  const why = differs(storedPolicy(c), renderPolicies(principals));
  assert.equal(why, null, `qmcp-principals: ${why}; ${RERECORD}`);
});
