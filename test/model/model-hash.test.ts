import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import fc from 'fast-check';
import { checkInstalledModel, DEFAULT_SETTINGS, MODEL_HEADER, modelHash, policyModel, renderCapabilitiesDoc, renderPolicy } from '../../src/shared/model/index.js';
import type { Settings } from '../../src/shared/model/index.js';
import { weakenedFile } from '../../verify/weakened-module.js';

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

test('the model header is found on whichever line it is, as a split into lines finds it; weakened, a scan of the first line only is caught', async () => {
  const split = (text: string): string | null => {
    for (const line of text.split('\n')) if (line.startsWith(MODEL_HEADER)) return line.slice(MODEL_HEADER.length).trim();
    return null;
  };
  const line = fc.oneof(fc.constantFrom(`${MODEL_HEADER}abc `, `${MODEL_HEADER}`, `x${MODEL_HEADER}abc`, '# qmcp-model:', '', 'qmcp.List * @anyvm @adminvm deny'), fc.string({ maxLength: 12 }));
  const texts = fc.array(line, { maxLength: 6 }).map((lines) => lines.join('\n'));
  fc.assert(fc.property(texts, (text) => policyModel(text) === split(text)));
  const weak = (await import(pathToFileURL(weakenedFile('shared/model/hash', 'at = end + 1;', 'break;')).href)) as { policyModel: typeof policyModel };
  const middle = `# a comment\n${MODEL_HEADER}abc\nqmcp.List * @anyvm @adminvm deny`;
  assert.equal(policyModel(middle), 'abc');
  assert.equal(weak.policyModel(middle), null);
});
