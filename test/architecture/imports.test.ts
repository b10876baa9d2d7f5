// The folder layout is the architecture: imports point toward shared only,
// and nothing outside Node's standard library enters dom0 or shared.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { sources } from './sources.js';
import { dirname, join, relative, resolve } from 'node:path';

const repo = resolve(import.meta.dirname, '..', '..', '..');
const src = join(repo, 'src');

/** Which of our folders, and which packages, each folder may import. */
const allowed: Record<string, { folders: string[]; packages: string[] }> = {
  shared: { folders: ['shared'], packages: [] },
  dom0: { folders: ['dom0', 'shared'], packages: [] },
  principal: { folders: ['principal', 'shared'], packages: ['@modelcontextprotocol/server', 'zod'] },
  sim: { folders: ['sim', 'dom0', 'shared'], packages: [] },
  cli: { folders: ['cli', 'sim', 'dom0', 'principal', 'shared'], packages: ['@modelcontextprotocol/server', 'zod'] },
};

function specifiers(text: string): string[] {
  const found: string[] = [];
  const patterns = [/\bfrom\s+['"]([^'"]+)['"]/g, /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g, /^\s*import\s+['"]([^'"]+)['"]/gm];
  for (const re of patterns) for (const m of text.matchAll(re)) found.push(m[1] as string);
  return found;
}

function packageName(spec: string): string {
  const parts = spec.split('/');
  return spec.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] as string);
}

const folders = readdirSync(src).filter((f) => statSync(join(src, f)).isDirectory());

test('every source folder has an import rule', () => {
  for (const f of folders) if (f !== 'qube') assert.ok(allowed[f], `no import rule for src/${f}`);
});

for (const [folder, rule] of Object.entries(allowed)) {
  test(`src/${folder} imports only ${rule.folders.join(', ')}${rule.packages.length ? ' and ' + rule.packages.join(', ') : ''}`, () => {
    const dir = join(src, folder);
    const problems: string[] = [];
    for (const file of statSafe(dir) ? sources(dir) : []) {
      for (const spec of specifiers(readFileSync(file, 'utf8'))) {
        const where = relative(repo, file);
        if (spec.startsWith('node:')) continue;
        if (spec.startsWith('.')) {
          const target = relative(src, resolve(dirname(file), spec)).split(/[\\/]/)[0] as string;
          if (!rule.folders.includes(target)) problems.push(`${where}: ${spec} (src/${target})`);
        } else if (!rule.packages.includes(packageName(spec))) {
          problems.push(`${where}: ${spec} (bare specifiers need node: or an allowed package)`);
        }
      }
    }
    assert.deepEqual(problems, []);
  });
}

function statSafe(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}
