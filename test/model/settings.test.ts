import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { SettingsReading } from '../../src/shared/model/index.js';
import { settingsDigest } from '../../src/shared/model/index.js';
import { APPROVAL_DEADLINE_RANGE, APPROVAL_PENDING_RANGE, AUDIT_FILE_RANGE, DEFAULT_SETTINGS, RATE_RANGE, gatedOperations, hasFatal, OPERATIONS, parseSettings, readSettingsFile, settingsPath } from '../../src/shared/model/index.js';

const GOOD = {
  principal: 'mcp-control',
  mode: 'compat',
  namePrefix: 'ai-',
  egressQube: 'ai-egress',
  poolCapBytes: 100 * 2 ** 30,
  privateCapBytes: 10 * 2 ** 30,
  birthCeiling: 'exec',
  tombstoneRetentionDays: 7,
  featureAllowlist: ['service.cups'],
  propagatingTags: ['egress-locked'],
};

test('a good file reads without problems', () => {
  const r = parseSettings(GOOD);
  assert.deepEqual(r.problems, []);
  assert.equal(r.settings.mode, 'compat');
  assert.equal(r.settings.birthCeiling, 'exec');
  assert.equal(r.settings.poolCapBytes, 100 * 2 ** 30);
});

test('each malformed setting falls back to its restrictive value', () => {
  const cases: [string, unknown, (s: ReturnType<typeof parseSettings>['settings']) => unknown, unknown][] = [
    ['mode', 'COMPAT', (s) => s.mode, 'least-privilege'],
    ['mode', true, (s) => s.mode, 'least-privilege'],
    ['birthCeiling', 'root', (s) => s.birthCeiling, 'read'],
    ['birthCeiling', 3, (s) => s.birthCeiling, 'read'],
    ['namePrefix', '', (s) => s.namePrefix, 'ai-'],
    ['namePrefix', 'a b', (s) => s.namePrefix, 'ai-'],
    ['tombstoneRetentionDays', 7.5, (s) => s.tombstoneRetentionDays, null],
    ['tombstoneRetentionDays', '7', (s) => s.tombstoneRetentionDays, null],
    ['tombstoneRetentionDays', 0, (s) => s.tombstoneRetentionDays, null],
    ['poolCapBytes', 1.5, (s) => s.poolCapBytes, null],
    ['poolCapBytes', '100', (s) => s.poolCapBytes, null],
    ['poolCapBytes', 2 ** 60, (s) => s.poolCapBytes, null],
    ['privateCapBytes', -1, (s) => s.privateCapBytes, null],
    ['privateCapBytes', false, (s) => s.privateCapBytes, null],
    ['egressQube', 'dom0', (s) => s.egressQube, null],
    ['egressQube', '../x', (s) => s.egressQube, null],
    ['featureAllowlist', ['internal'], (s) => s.featureAllowlist, []],
    ['propagatingTags', ['ai-full'], (s) => s.propagatingTags, []],
  ];
  for (const [key, value, get, want] of cases) {
    const r = parseSettings({ ...GOOD, [key]: value });
    assert.deepEqual(get(r.settings), want, `${key}=${JSON.stringify(value)}`);
    assert.ok(r.problems.some((p) => p.key === key), `${key} reported`);
    assert.ok(!hasFatal(r.problems), `${key} not fatal`);
  }
});

test('absent mode, caps and retention read restrictively', () => {
  const r = parseSettings({});
  assert.equal(r.settings.mode, 'least-privilege');
  assert.equal(r.settings.poolCapBytes, null);
  assert.equal(r.settings.privateCapBytes, null);
  assert.equal(r.settings.tombstoneRetentionDays, null);
  assert.equal(r.settings.birthCeiling, 'read');
  assert.equal(r.settings.namePrefix, 'ai-');
  assert.equal(r.settings.egressQube, null);
});

test('a malformed principal or tag name is fatal', () => {
  assert.ok(hasFatal(parseSettings({ ...GOOD, principal: 'dom0' }).problems));
  assert.ok(hasFatal(parseSettings({ ...GOOD, principal: '@anyvm' }).problems));
  assert.ok(hasFatal(parseSettings({ ...GOOD, tags: { exec: 'has space' } }).problems));
  assert.ok(hasFatal(parseSettings({ ...GOOD, tags: { exec: 'ai-full' } }).problems));
  assert.ok(hasFatal(parseSettings({ ...GOOD, tags: { admin: 'x' } }).problems));
  assert.equal(parseSettings({ ...GOOD, tags: { umbrella: 'agent' } }).settings.tags.umbrella, 'agent');
});

test('a missing or broken file reads fail-closed with a problem', async () => {
  const root = await mkdtemp(join(tmpdir(), 'qmcp-settings-'));
  try {
    const path = settingsPath(root);
    let r = readSettingsFile(path);
    assert.equal(r.settings.mode, 'least-privilege');
    assert.ok(r.problems.length > 0);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, '{"mode": "compat",');
    r = readSettingsFile(path);
    assert.equal(r.settings.mode, 'least-privilege');
    await writeFile(path, JSON.stringify(GOOD));
    r = readSettingsFile(path);
    assert.equal(r.settings.mode, 'compat');
    assert.deepEqual(r.problems, []);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

const GATEABLE = OPERATIONS.filter((op) => op.gate !== null).map((op) => op.id);

/**
 * What a reading of a malformed gate or approval setting must be: reported,
 * not fatal, and at least as strict as the strictest valid value (every
 * operation that can be gated asks, the shortest deadline, the smallest cap).
 */
function failClosedProblems(r: SettingsReading, key: string): string[] {
  const out: string[] = [];
  if (!r.problems.some((p) => p.key === key)) out.push('not reported');
  if (hasFatal(r.problems)) out.push('fatal');
  if (key === 'gate' && gatedOperations(r.settings).join() !== GATEABLE.join()) out.push(`gates only ${gatedOperations(r.settings).join(' ')}`);
  if (key === 'approvalDeadlineSeconds' && r.settings.approvalDeadlineSeconds !== APPROVAL_DEADLINE_RANGE.min) out.push(`waits ${r.settings.approvalDeadlineSeconds} s`);
  if (key === 'approvalPendingCap' && r.settings.approvalPendingCap !== APPROVAL_PENDING_RANGE.min) out.push(`lets ${r.settings.approvalPendingCap} wait`);
  return out;
}

const MALFORMED: readonly [string, unknown][] = [
  ['gate', 'ask'],
  ['gate', ['kill']],
  ['gate', null],
  ['gate', 1],
  ['gate', { nosuch: 'allow' }],
  ['gate', JSON.parse('{"__proto__": "allow"}')],
  ['gate', { constructor: 'allow' }],
  ['gate', { state: 'ask' }],
  ['gate', { 'file.read': 'allow' }],
  ['gate', { kill: 'yes' }],
  ['gate', { kill: 'ALLOW' }],
  ['gate', { kill: true }],
  ['gate', { kill: null }],
  // a malformed entry takes the well-formed ones with it
  ['gate', { kill: 'allow', remove: 'allow', copy: 'maybe' }],
  ['approvalDeadlineSeconds', 0],
  ['approvalDeadlineSeconds', APPROVAL_DEADLINE_RANGE.min - 1],
  ['approvalDeadlineSeconds', APPROVAL_DEADLINE_RANGE.max + 1],
  ['approvalDeadlineSeconds', 60.5],
  ['approvalDeadlineSeconds', '60'],
  ['approvalDeadlineSeconds', null],
  ['approvalDeadlineSeconds', -60],
  ['approvalDeadlineSeconds', 2 ** 60],
  ['approvalPendingCap', 0],
  ['approvalPendingCap', APPROVAL_PENDING_RANGE.max + 1],
  ['approvalPendingCap', 2.5],
  ['approvalPendingCap', '4'],
  ['approvalPendingCap', null],
  ['approvalPendingCap', [4]],
];

test('each malformed gate, deadline and pending cap reads fail-closed with a problem', () => {
  for (const [key, value] of MALFORMED) {
    assert.deepEqual(failClosedProblems(parseSettings({ ...GOOD, [key]: value }), key), [], `${key}=${JSON.stringify(value)}`);
  }
});

test('the fail-closed check catches a reading that keeps the well-formed entries, a longer deadline or a larger cap', () => {
  const r = parseSettings({ ...GOOD, gate: { kill: 'allow', copy: 'maybe' } });
  assert.match(failClosedProblems({ ...r, settings: { ...r.settings, gate: { kill: 'allow' } } }, 'gate').join(), /^gates only (?!.*\bkill\b)/);
  assert.deepEqual(failClosedProblems({ ...r, problems: [] }, 'gate'), ['not reported']);
  const d = parseSettings({ ...GOOD, approvalDeadlineSeconds: 9999 });
  assert.notDeepEqual(failClosedProblems({ ...d, settings: { ...d.settings, approvalDeadlineSeconds: APPROVAL_DEADLINE_RANGE.max } }, 'approvalDeadlineSeconds'), []);
  const c = parseSettings({ ...GOOD, approvalPendingCap: 99 });
  assert.notDeepEqual(failClosedProblems({ ...c, settings: { ...c.settings, approvalPendingCap: APPROVAL_PENDING_RANGE.max } }, 'approvalPendingCap'), []);
});

test('a well-formed gate, deadline and cap read as written; absent, the gate is the model\'s defaults', () => {
  const r = parseSettings({ ...GOOD, gate: { kill: 'allow', run: 'ask' }, approvalDeadlineSeconds: APPROVAL_DEADLINE_RANGE.max, approvalPendingCap: APPROVAL_PENDING_RANGE.max });
  assert.deepEqual(r.problems, []);
  const defaults = OPERATIONS.filter((op) => op.gate === 'ask').map((op) => op.id);
  assert.deepEqual(gatedOperations(r.settings), GATEABLE.filter((id) => id === 'run' || (defaults.includes(id) && id !== 'kill')));
  assert.deepEqual([r.settings.approvalDeadlineSeconds, r.settings.approvalPendingCap], [APPROVAL_DEADLINE_RANGE.max, APPROVAL_PENDING_RANGE.max]);
  assert.deepEqual(gatedOperations(parseSettings(GOOD).settings), defaults);
});

/** A malformed rate reads as the lowest (fewer calls, never more); malformed retention prunes nothing. */
function rateAndRetentionProblems(r: SettingsReading, key: string): string[] {
  const out: string[] = [];
  if (!r.problems.some((p) => p.key === key)) out.push('not reported');
  if (hasFatal(r.problems)) out.push('fatal');
  const { perSecond, burst } = r.settings.rate;
  if (key === 'rate' && (perSecond !== RATE_RANGE.perSecond.min || burst !== RATE_RANGE.burst.min)) out.push(`allows ${perSecond}/s burst ${burst}`);
  const { keepBytes, keepDays } = r.settings.auditRetention;
  if (key === 'auditRetention' && (keepBytes !== null || keepDays !== null)) out.push(`prunes at ${keepBytes} bytes / ${keepDays} days`);
  return out;
}

const MALFORMED_RATE: readonly [string, unknown][] = [
  ['rate', 20],
  ['rate', null],
  ['rate', {}],
  ['rate', { perSecond: 20 }],
  ['rate', { perSecond: 20, burst: 200, extra: 1 }],
  ['rate', { perSecond: 0, burst: 200 }],
  ['rate', { perSecond: 20.5, burst: 200 }],
  ['rate', { perSecond: '20', burst: 200 }],
  ['rate', { perSecond: RATE_RANGE.perSecond.max + 1, burst: 200 }],
  ['rate', { perSecond: 20, burst: RATE_RANGE.burst.min - 1 }],
  ['rate', { perSecond: 20, burst: RATE_RANGE.burst.max + 1 }],
  ['auditRetention', 'forever'],
  ['auditRetention', { keepBytes: -1 }],
  ['auditRetention', { keepBytes: 1024, keepDays: 0 }],
  ['auditRetention', { keepBytes: 1024, keepDays: '30' }],
  ['auditRetention', { fileBytes: AUDIT_FILE_RANGE.min - 1, keepBytes: 1024 }],
  ['auditRetention', { keepBytes: 1024, keepWeeks: 2 }],
];

test('each malformed rate reads as the lowest rate and each malformed retention prunes nothing, with a problem', () => {
  for (const [key, value] of MALFORMED_RATE) {
    assert.deepEqual(rateAndRetentionProblems(parseSettings({ ...GOOD, [key]: value }), key), [], `${key}=${JSON.stringify(value)}`);
  }
});

test('the rate and retention check catches a reading that keeps the default rate or still prunes', () => {
  const r = parseSettings({ ...GOOD, rate: { perSecond: 0, burst: 200 }, auditRetention: { keepBytes: -1 } });
  assert.notDeepEqual(rateAndRetentionProblems({ ...r, settings: { ...r.settings, rate: DEFAULT_SETTINGS.rate } }, 'rate'), []);
  assert.notDeepEqual(rateAndRetentionProblems({ ...r, settings: { ...r.settings, auditRetention: DEFAULT_SETTINGS.auditRetention } }, 'auditRetention'), []);
  assert.deepEqual(rateAndRetentionProblems({ ...r, problems: [] }, 'rate'), ['not reported']);
});

test('a well-formed rate and retention read as written; absent, the defaults; neither is part of the rendered settings digest', () => {
  const r = parseSettings({ ...GOOD, rate: { perSecond: 5, burst: 50 }, auditRetention: { fileBytes: AUDIT_FILE_RANGE.min, keepBytes: 10 * 2 ** 20, keepDays: 30 } });
  assert.deepEqual(r.problems, []);
  assert.deepEqual(r.settings.rate, { perSecond: 5, burst: 50 });
  assert.deepEqual(r.settings.auditRetention, { fileBytes: AUDIT_FILE_RANGE.min, keepBytes: 10 * 2 ** 20, keepDays: 30 });
  const d = parseSettings(GOOD).settings;
  assert.deepEqual([d.rate, d.auditRetention], [DEFAULT_SETTINGS.rate, DEFAULT_SETTINGS.auditRetention]);
  assert.equal(settingsDigest(r.settings), settingsDigest(d));
});
