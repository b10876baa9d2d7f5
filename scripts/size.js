#!/usr/bin/env node
// Prints the size of the dom0 trusted computing base: lines of TypeScript in
// src/dom0 and src/shared, and bytes of the compiled bundle the installer
// copies into dom0 (dist/src/dom0 and dist/src/shared; run `npm run build` first).
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const repo = join(import.meta.dirname, '..');
const PARTS = ['dom0', 'shared'];

function files(dir, suffix) {
  const out = [];
  for (const entry of readdirSync(dir).sort()) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) out.push(...files(path, suffix));
    else if (entry.endsWith(suffix) && !entry.endsWith('.d.ts')) out.push(path);
  }
  return out;
}

let lines = 0;
let sourceFiles = 0;
for (const part of PARTS) {
  for (const f of files(join(repo, 'src', part), '.ts')) {
    const text = readFileSync(f, 'utf8');
    lines += text.split('\n').length - (text.endsWith('\n') ? 1 : 0);
    sourceFiles++;
  }
}
console.log(`dom0 source: ${lines} lines of TypeScript in ${sourceFiles} files (src/dom0, src/shared)`);

const dist = join(repo, 'dist', 'src');
if (!existsSync(join(dist, 'dom0'))) {
  console.log('dom0 bundle: not built (run npm run build)');
} else {
  let bytes = 0;
  let bundleFiles = 0;
  for (const part of PARTS) {
    for (const f of files(join(dist, part), '.js')) {
      bytes += statSync(f).size;
      bundleFiles++;
    }
  }
  console.log(`dom0 bundle: ${bytes} bytes of JavaScript in ${bundleFiles} files (dist/src/dom0, dist/src/shared)`);
}
