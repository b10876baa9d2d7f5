import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { checkInstalledModel, DEFAULT_SETTINGS, modelHash, policyModel, renderCapabilitiesDoc, renderPolicy } from '../../src/shared/model/index.js';

test('the rendered policy carries the model hash', () => {
  const text = renderPolicy(structuredClone(DEFAULT_SETTINGS));
  assert.match(modelHash(), /^[0-9a-f]{64}$/);
  assert.equal(policyModel(text), modelHash());
  assert.deepEqual(checkInstalledModel(text, modelHash()), { ok: true, problems: [] });
});

test('a mismatched or missing hash on either side is refused', () => {
  const text = renderPolicy(structuredClone(DEFAULT_SETTINGS));
  const other = 'f'.repeat(64);
  assert.equal(checkInstalledModel(text, other).ok, false);
  assert.equal(checkInstalledModel(text, null).ok, false);
  assert.equal(checkInstalledModel(text.replace(modelHash(), other), modelHash()).ok, false);
  assert.equal(checkInstalledModel(text.split('\n').filter((l) => !l.startsWith('# qmcp-model:')).join('\n'), modelHash()).ok, false);
});

test('docs/capabilities.md is what the generator prints', async () => {
  const path = fileURLToPath(new URL('../../../docs/capabilities.md', import.meta.url));
  const committed = await readFile(path, 'utf8');
  assert.equal(committed, renderCapabilitiesDoc(), 'regenerate: node dist/scripts/gen-capability-table.js > docs/capabilities.md');
});
