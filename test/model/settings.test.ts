import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { hasFatal, parseSettings, readSettingsFile, settingsPath } from '../../src/shared/model/index.js';

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
