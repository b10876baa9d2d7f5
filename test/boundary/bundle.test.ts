// What the installer copies into dom0 must run on a bare dom0: Node's
// standard library and the bundle's own files, nothing else.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { BUNDLE_DIR, installDom0 } from '../../src/dom0/install/index.js';

function jsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) out.push(...jsFiles(path));
    else if (entry.endsWith('.js')) out.push(path);
  }
  return out;
}

/** Static and dynamic import specifiers, and any other way of loading code. */
function loads(text: string): { specifiers: string[]; other: string[] } {
  const specifiers: string[] = [];
  const patterns = [/\bfrom\s*['"]([^'"]+)['"]/g, /\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g, /^\s*import\s*['"]([^'"]+)['"]/gm];
  for (const re of patterns) for (const m of text.matchAll(re)) specifiers.push(m[1] as string);
  const other: string[] = [];
  for (const re of [/\brequire\s*\(/g, /\bcreateRequire\b/g, /\bimport\s*\(\s*[^'"\s]/g, /process\.dlopen/g]) {
    for (const m of text.matchAll(re)) other.push(m[0]);
  }
  return { specifiers, other };
}

test('the installed dom0 bundle imports only node: builtins and its own files', async () => {
  const root = mkdtempSync(join(tmpdir(), 'qmcp-bundle-'));
  try {
    await installDom0({ root, qubesdSocket: join(root, 'qubesd.sock') });
    const bundle = join(root, BUNDLE_DIR);
    const files = jsFiles(bundle);
    assert.ok(files.some((f) => f.endsWith(join('dom0', 'service-main.js'))), 'service entry point present');
    assert.ok(files.some((f) => f.includes(`${sep}shared${sep}`)), 'shared code present');
    for (const file of files) {
      const name = relative(bundle, file);
      const { specifiers, other } = loads(readFileSync(file, 'utf8'));
      assert.deepEqual(other, [], `${name} loads code some other way`);
      for (const spec of specifiers) {
        if (spec.startsWith('node:')) continue;
        assert.ok(spec.startsWith('./') || spec.startsWith('../'), `${name} imports ${spec}`);
        const target = resolve(dirname(file), spec);
        assert.ok(!relative(bundle, target).startsWith('..'), `${name} reaches outside the bundle: ${spec}`);
        assert.ok(existsSync(target), `${name} imports ${spec}, which the bundle does not hold`);
      }
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
