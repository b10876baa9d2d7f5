#!/usr/bin/env node
// `npm run build`: compiles into a fresh directory beside dist, then moves
// each changed file into dist with a rename and removes the files no source
// produces any more. A process running from dist meanwhile (the demo and the
// qrexec clients it spawns, a test run in another shell) finds every module
// at every moment, each file whole, old or new; a failed compile leaves dist
// as it was. dist stays a plain directory, so `npm pack` still takes it.
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, rmdirSync, writeSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = join(import.meta.dirname, '..');
const dist = join(root, 'dist');
const PREFIX = '.dist-';
const staging = join(root, `${PREFIX}${process.pid}`);
const lock = join(root, `${PREFIX}lock`);

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
}

/** Staging directories of builds that died. */
function removeLeftovers() {
  for (const name of readdirSync(root)) {
    const m = /^\.dist-(\d+)$/.exec(name);
    if (m && Number(m[1]) !== process.pid && !alive(Number(m[1]))) rmSync(join(root, name), { recursive: true, force: true });
  }
}

/** The lock's holder died, or never wrote its pid. */
function stale() {
  try {
    const holder = Number(readFileSync(lock, 'utf8').trim());
    if (Number.isInteger(holder) && holder > 0) return !alive(holder);
    return Date.now() - lstatSync(lock).mtimeMs > 10_000;
  } catch {
    return false;
  }
}

/** Holds the lock file while fn runs, so two builds never update dist at once. */
function locked(fn) {
  for (;;) {
    try {
      const fd = openSync(lock, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      break;
    } catch (err) {
      if (err.code !== 'EEXIST') throw err;
      if (stale()) rmSync(lock, { force: true });
      else Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
    }
  }
  try {
    fn();
  } finally {
    rmSync(lock, { force: true });
  }
}

/** Every file under dir, as paths relative to it. */
function files(dir, base = dir) {
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...files(path, base));
    else out.push(relative(base, path));
  }
  return out;
}

function isDirectory(path) {
  try {
    return lstatSync(path).isDirectory();
  } catch {
    return false;
  }
}

function sameFile(a, b) {
  try {
    return readFileSync(a).equals(readFileSync(b));
  } catch {
    return false;
  }
}

/** Moves the staged build into dist, then removes what it no longer has. */
function swapIn() {
  const fresh = files(staging);
  for (const rel of fresh) {
    const to = join(dist, rel);
    if (sameFile(join(staging, rel), to)) continue;
    mkdirSync(join(to, '..'), { recursive: true });
    if (isDirectory(to)) rmSync(to, { recursive: true, force: true });
    renameSync(join(staging, rel), to);
  }
  const keep = new Set(fresh);
  for (const rel of files(dist)) if (!keep.has(rel)) rmSync(join(dist, rel), { force: true });
  removeEmptyDirs(dist);
}

function removeEmptyDirs(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    const path = join(dir, entry.name);
    removeEmptyDirs(path);
    if (readdirSync(path).length === 0) rmdirSync(path);
  }
}

removeLeftovers();
rmSync(staging, { recursive: true, force: true });
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
const compiled = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.json', '--outDir', staging], { cwd: root, stdio: 'inherit' });
if (compiled.status !== 0) {
  rmSync(staging, { recursive: true, force: true });
  console.error('build failed; dist is left as it was');
  process.exit(compiled.status ?? 1);
}
if (!existsSync(dist)) mkdirSync(dist);
try {
  locked(swapIn);
} finally {
  rmSync(staging, { recursive: true, force: true });
}
