import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { checkInstalledModel, DEFAULT_SETTINGS, modelHash, policyModel, renderCapabilitiesDoc, renderPolicy } from '../../src/shared/model/index.js';
import type { Settings } from '../../src/shared/model/index.js';

const installed = (over: Partial<Settings> = {}): Settings => ({ ...structuredClone(DEFAULT_SETTINGS), model: modelHash(), ...over });

test('the rendered policy carries the model hash', () => {
  const text = renderPolicy(installed());
  assert.match(modelHash(), /^[0-9a-f]{64}$/);
  assert.equal(policyModel(text), modelHash());
  assert.deepEqual(checkInstalledModel(text, installed()), { ok: true, problems: [] });
});

test('a mismatched or missing hash on either side is refused', () => {
  const text = renderPolicy(installed());
  const other = 'f'.repeat(64);
  assert.equal(checkInstalledModel(text, installed({ model: other })).ok, false);
  assert.equal(checkInstalledModel(text, installed({ model: null })).ok, false);
  assert.equal(checkInstalledModel(text.replace(modelHash(), other), installed()).ok, false);
  assert.equal(checkInstalledModel(text.split('\n').filter((l) => !l.startsWith('# qmcp-model:')).join('\n'), installed()).ok, false);
});

test('settings changed without re-rendering the policy (a half-done mode switch) are refused', () => {
  const text = renderPolicy(installed({ mode: 'least-privilege' }));
  assert.equal(checkInstalledModel(text, installed({ mode: 'compat' })).ok, false);
  assert.equal(checkInstalledModel(text, installed({ poolCapBytes: 5 })).ok, false);
  assert.equal(checkInstalledModel(text.split('\n').filter((l) => !l.startsWith('# qmcp-settings:')).join('\n'), installed()).ok, false);
  assert.equal(checkInstalledModel(renderPolicy(installed({ mode: 'compat' })), installed({ mode: 'compat' })).ok, true);
});

test('docs/capabilities.md is what the generator prints', async () => {
  const path = fileURLToPath(new URL('../../../docs/capabilities.md', import.meta.url));
  const committed = await readFile(path, 'utf8');
  assert.equal(committed, renderCapabilitiesDoc(), 'regenerate: node dist/scripts/gen-capability-table.js > docs/capabilities.md');
});
