#!/usr/bin/env node
// Runs every compiled test file under dist/test with Node's own test runner,
// two files at a time, longest first, each in a runner of its own with a
// time limit that fits the work the file does. Arguments, if any, keep only
// the test files whose path contains one of them; `--list` prints the files
// in the order they would start, and runs none.
//
// A limit is there to end a hung test, not to time a slow one: it is the
// file's budget below, times QMCP_TEST_TIME_FACTOR (default 1), times the
// machine's load per core when the file starts (at least 1). A busy machine
// makes the suite slower, never red.
//
// Each file's TMPDIR is a directory of its own, removed when the file ends,
// under QMCP_TEST_TMPDIR, else /dev/shm where programs can run from it, else
// the system's: the simulated hosts sync every audit entry and state file,
// and on a disk those syncs are waits, not work.
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join, relative } from 'node:path';

const MINUTE = 60_000;

// Minutes each file may take on an idle machine: about ten times what it
// takes there, and never under the default.
const DEFAULT_BUDGET = 5;
const BUDGETS = [
  // the scale-1 checks and their weakened variants; noninterference runs 40 machines
  ['verify/noninterference', 20],
  ['verify/', 10],
  // downloads the MCP Inspector the first time, then runs it
  ['workflow/demo', 15],
  // real sandboxes, many simulated hosts, archives and packages built
  ['workflow/', 10],
  ['sandbox/', 10],
  ['selftest/', 10],
  ['boundary/', 10],
  ['packaging/', 10],
  ['principal/sim', 10],
];

// Seconds the longest files take on an idle 2-core machine, two files at a
// time. They start first, so the suite does not end on one long file running
// alone while the other slot is idle; files not listed count as short and
// keep their path order. Only the order depends on these figures.
const SECONDS = [
  ['verify/timing.test.js', 82],
  ['verify/sequences.test.js', 67],
  ['verify/noninterference.test.js', 60],
  ['verify/run.test.js', 50],
  ['principal/events-poll.test.js', 48],
  ['workflow/principals.test.js', 44],
  ['verify/races.test.js', 41],
  ['verify/timing-targets.test.js', 38],
  ['verify/malformed.test.js', 38],
  ['dom0/principals.test.js', 28],
  ['boundary/invariants.test.js', 26],
  ['workflow/demo.test.js', 25],
  ['verify/flood.test.js', 22],
  ['selftest/selftest.test.js', 22],
  ['packaging/release.test.js', 21],
  ['boundary/resident.test.js', 20],
  ['verify/faults.test.js', 18],
  ['gate/end-to-end.test.js', 18],
  ['verify/approval-channel.test.js', 18],
  ['verify/noninterference-notifications.test.js', 18],
  ['install/uninstall.test.js', 17],
  ['principal/http-many.test.js', 17],
  ['workflow/agent.test.js', 15],
  ['packaging/deploy-doc.test.js', 15],
  ['verify/concurrency.test.js', 14],
  ['qube/filecopy.test.js', 13],
  ['workflow/gate.test.js', 13],
  ['sandbox/bounds.test.js', 12],
  ['sandbox/services.test.js', 12],
  ['operator/explain.test.js', 11],
  ['qube/jobs.test.js', 10],
  ['services-read/services.test.js', 10],
];

const root = join(import.meta.dirname, '..', 'dist', 'test');
const listOnly = process.argv.includes('--list');
const filters = process.argv.slice(2).filter((a) => a !== '--list');
const CONCURRENCY = 2;

function timeFactor() {
  const text = process.env['QMCP_TEST_TIME_FACTOR'];
  if (text === undefined || text === '') return 1;
  const n = Number(text);
  if (!(n > 0)) {
    console.error(`QMCP_TEST_TIME_FACTOR must be a positive number, not ${JSON.stringify(text)}`);
    process.exit(2);
  }
  return n;
}
const FACTOR = timeFactor();

/** A directory in memory whose files can be run (tests start scripts they write), else the system's. */
function memoryDir() {
  try {
    if (!statSync('/dev/shm').isDirectory()) return tmpdir();
    const probe = mkdtempSync('/dev/shm/qt');
    try {
      writeFileSync(join(probe, 'x'), '#!/bin/sh\n');
      chmodSync(join(probe, 'x'), 0o755);
      return spawnSync(join(probe, 'x')).status === 0 ? '/dev/shm' : tmpdir();
    } finally {
      rmSync(probe, { recursive: true, force: true });
    }
  } catch {
    return tmpdir();
  }
}

function collect(dir) {
  const out = [];
  for (const entry of readdirSync(dir).sort()) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) out.push(...collect(path));
    else if (entry.endsWith('.test.js')) out.push(path);
  }
  return out;
}

function budgetMs(name) {
  const minutes = BUDGETS.find(([prefix]) => name.startsWith(prefix))?.[1] ?? DEFAULT_BUDGET;
  const load = Math.max(1, loadavg()[0] / availableParallelism());
  return Math.round(minutes * MINUTE * FACTOR * load);
}

// short: the files' sockets live under it, and a socket's path has room for about 100 bytes
let scratch = null;
let serial = 0;

function runFile(path) {
  const name = relative(root, path);
  const limit = budgetMs(name);
  const started = Date.now();
  scratch ??= mkdtempSync(join(process.env['QMCP_TEST_TMPDIR'] || memoryDir(), 'qt'));
  const tmp = join(scratch, String(serial++));
  mkdirSync(tmp);
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--test', '--test-reporter=spec', `--test-timeout=${limit}`, path], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TMPDIR: tmp } });
    const chunks = [];
    child.stdout.on('data', (c) => chunks.push(c));
    child.stderr.on('data', (c) => chunks.push(c));
    child.on('close', (code, signal) => {
      rmSync(tmp, { recursive: true, force: true });
      resolve({ name, ok: code === 0, code: code ?? signal, seconds: (Date.now() - started) / 1000, limit, output: Buffer.concat(chunks).toString() });
    });
  });
}

const expectedSeconds = (path) => SECONDS.find(([name]) => relative(root, path) === name)?.[1] ?? 0;
const files = collect(root)
  .filter((f) => filters.length === 0 || filters.some((p) => relative(root, f).includes(p)))
  // a stable sort: the short files stay in path order
  .sort((x, y) => expectedSeconds(y) - expectedSeconds(x));
if (files.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}
if (listOnly) {
  for (const f of files) process.stdout.write(`${relative(root, f)}\n`);
  process.exit(0);
}

const started = Date.now();
const failed = [];
let next = 0;
let done = 0;
async function worker() {
  while (next < files.length) {
    const r = await runFile(files[next++]);
    done++;
    if (!r.ok) failed.push(r.name);
    process.stdout.write(r.output.endsWith('\n') || r.output === '' ? r.output : r.output + '\n');
    const status = r.ok ? 'ok' : `FAILED (exit ${r.code})`;
    process.stdout.write(`# [${done}/${files.length}] ${r.name}: ${status} in ${r.seconds.toFixed(1)} s (limit ${Math.round(r.limit / 1000)} s)\n\n`);
  }
}
await Promise.all(Array.from({ length: Math.min(CONCURRENCY, files.length) }, worker));
if (scratch) rmSync(scratch, { recursive: true, force: true });

const minutes = ((Date.now() - started) / MINUTE).toFixed(1);
process.stdout.write(`# ${files.length} test files in ${minutes} min: ${files.length - failed.length} passed, ${failed.length} failed\n`);
for (const name of failed) process.stdout.write(`#   failed: ${name}\n`);
process.exit(failed.length === 0 ? 0 : 1);
