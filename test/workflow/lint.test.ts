import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { ESLint } from 'eslint';

const REPO = join(import.meta.dirname, '..', '..', '..');

// A promise nobody awaits in async code loses its error: the lint must say so.
const FLOATING = `async function work(): Promise<void> {}\nexport function go(): void {\n  work();\n}\n`;
const MISUSED = `export function go(list: number[]): void {\n  list.forEach(async () => {});\n  if (Promise.resolve(1)) return;\n}\n`;

test('type-aware lint: a floating promise and a promise where a value is expected are errors in src and verify', async () => {
  const eslint = new ESLint({ cwd: REPO });
  for (const file of ['src/cli/version.ts', 'verify/check.ts']) {
    const [floating] = await eslint.lintText(FLOATING, { filePath: join(REPO, file) });
    assert.ok(floating?.messages.some((m) => m.ruleId === '@typescript-eslint/no-floating-promises'), `${file}: ${JSON.stringify(floating?.messages)}`);
    const [misused] = await eslint.lintText(MISUSED, { filePath: join(REPO, file) });
    const rules = misused?.messages.map((m) => m.ruleId) ?? [];
    assert.equal(rules.filter((r) => r === '@typescript-eslint/no-misused-promises').length, 2, `${file}: ${JSON.stringify(misused?.messages)}`);
  }
});
