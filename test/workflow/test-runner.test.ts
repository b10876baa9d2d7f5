/**
 * scripts/run-tests.js: a file's time limit comes from its budget scaled by
 * QMCP_TEST_TIME_FACTOR (and the load), not from one fixed window; a line per
 * file says how it went; the longest files start first. Runs the script on a
 * copy with fixture files.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

const repo = join(import.meta.dirname, '..', '..', '..');

// A second of work: over a limit scaled far down, well under the default one.
const SLOW = `import { test } from 'node:test';
test('slow', async () => { await new Promise((r) => setTimeout(r, 1000)); });
`;
const QUICK = `import { test } from 'node:test';
test('quick', () => {});
`;

function checkout(): string {
  const dir = mkdtempSync(join(tmpdir(), 'qmcp-runner-'));
  mkdirSync(join(dir, 'scripts'));
  copyFileSync(join(repo, 'scripts', 'run-tests.js'), join(dir, 'scripts', 'run-tests.js'));
  writeFileSync(join(dir, 'package.json'), '{ "type": "module" }\n');
  mkdirSync(join(dir, 'dist', 'test', 'fixture'), { recursive: true });
  writeFileSync(join(dir, 'dist', 'test', 'fixture', 'slow.test.js'), SLOW);
  writeFileSync(join(dir, 'dist', 'test', 'fixture', 'quick.test.js'), QUICK);
  return dir;
}

function runTests(dir: string, factor: string | undefined, args: readonly string[] = []): Promise<{ status: number | null; out: string }> {
  const env = { ...process.env };
  // set for test files by Node's runner; inherited, it would make the inner runner skip every file
  delete env['NODE_TEST_CONTEXT'];
  if (factor === undefined) delete env['QMCP_TEST_TIME_FACTOR'];
  else env['QMCP_TEST_TIME_FACTOR'] = factor;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(dir, 'scripts', 'run-tests.js'), ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, out }));
  });
}

test('run-tests: the limits scale with QMCP_TEST_TIME_FACTOR, and each file ends with a line saying how it went', async () => {
  const dir = checkout();
  try {
    const normal = await runTests(dir, undefined);
    assert.equal(normal.status, 0, normal.out);
    assert.match(normal.out, /^# \[\d\/2\] fixture\/slow\.test\.js: ok in [0-9.]+ s \(limit \d+ s\)$/m);
    assert.match(normal.out, /^# \[\d\/2\] fixture\/quick\.test\.js: ok in /m);
    assert.match(normal.out, /^# 2 test files in [0-9.]+ min: 2 passed, 0 failed$/m);

    // a budget of minutes scaled down to milliseconds: the slow file runs out of time
    const squeezed = await runTests(dir, '0.00001');
    assert.equal(squeezed.status, 1, squeezed.out);
    assert.match(squeezed.out, /^# \[\d\/2\] fixture\/slow\.test\.js: FAILED/m);
    assert.match(squeezed.out, /^# {3}failed: fixture\/slow\.test\.js$/m);

    const bad = await runTests(dir, 'fast');
    assert.equal(bad.status, 2);
    assert.match(bad.out, /QMCP_TEST_TIME_FACTOR must be a positive number/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('run-tests: a file known to be long starts before the short ones, which keep their path order', async () => {
  const dir = checkout();
  try {
    // a path the runner's table lists as the longest, after the fixtures in path order
    mkdirSync(join(dir, 'dist', 'test', 'verify'));
    writeFileSync(join(dir, 'dist', 'test', 'verify', 'noninterference.test.js'), QUICK);
    const listed = await runTests(dir, undefined, ['--list']);
    assert.equal(listed.status, 0, listed.out);
    assert.deepEqual(listed.out.trim().split('\n'), ['verify/noninterference.test.js', 'fixture/quick.test.js', 'fixture/slow.test.js']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('run-tests: each file has a TMPDIR of its own under QMCP_TEST_TMPDIR, removed when the file ends', async () => {
  const dir = checkout();
  const scratch = mkdtempSync(join(tmpdir(), 'qmcp-runner-tmp-'));
  // each file leaves a file in its TMPDIR and says where it was
  const leaves = (n: number): string => `import { test } from 'node:test';
import { tmpdir } from 'node:os';
import { writeFileSync } from 'node:fs';
test('leaves', () => { writeFileSync(tmpdir() + '/left', ''); writeFileSync(${JSON.stringify(join(scratch, `said${n}`))}, tmpdir()); });
`;
  try {
    for (const n of [1, 2]) writeFileSync(join(dir, 'dist', 'test', 'fixture', `leaves${n}.test.js`), leaves(n));
    const env = process.env['QMCP_TEST_TMPDIR'];
    process.env['QMCP_TEST_TMPDIR'] = scratch;
    const r = await runTests(dir, undefined, ['leaves']).finally(() => (env === undefined ? delete process.env['QMCP_TEST_TMPDIR'] : (process.env['QMCP_TEST_TMPDIR'] = env)));
    assert.equal(r.status, 0, r.out);
    const said = [1, 2].map((n) => readFileSync(join(scratch, `said${n}`), 'utf8'));
    assert.notEqual(said[0], said[1]);
    for (const d of said) assert.ok(d.startsWith(scratch + '/'), d);
    // nothing left under it but what the fixtures said
    assert.deepEqual(readdirSync(scratch).sort(), ['said1', 'said2']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
    rmSync(scratch, { recursive: true, force: true });
  }
});
