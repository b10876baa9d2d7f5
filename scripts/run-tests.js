#!/usr/bin/env node
// Runs every compiled test file under dist/test with Node's own test runner,
// two files at a time, each in a runner of its own with a time limit that
// fits the work the file does. Arguments, if any, keep only the test files
// whose path contains one of them.
//
// A limit is there to end a hung test, not to time a slow one: it is the
// file's budget below, times QMCP_TEST_TIME_FACTOR (default 1), times the
// machine's load per core when the file starts (at least 1). A busy machine
// makes the suite slower, never red.
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
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

const root = join(import.meta.dirname, '..', 'dist', 'test');
const filters = process.argv.slice(2);
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

function runFile(path) {
  const name = relative(root, path);
  const limit = budgetMs(name);
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--test', '--test-reporter=spec', `--test-timeout=${limit}`, path], { stdio: ['ignore', 'pipe', 'pipe'] });
    const chunks = [];
    child.stdout.on('data', (c) => chunks.push(c));
    child.stderr.on('data', (c) => chunks.push(c));
    child.on('close', (code, signal) => {
      resolve({ name, ok: code === 0, code: code ?? signal, seconds: (Date.now() - started) / 1000, limit, output: Buffer.concat(chunks).toString() });
    });
  });
}

const files = collect(root).filter((f) => filters.length === 0 || filters.some((p) => relative(root, f).includes(p)));
if (files.length === 0) {
  console.error('no test files matched');
  process.exit(1);
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

const minutes = ((Date.now() - started) / MINUTE).toFixed(1);
process.stdout.write(`# ${files.length} test files in ${minutes} min: ${files.length - failed.length} passed, ${failed.length} failed\n`);
for (const name of failed) process.stdout.write(`#   failed: ${name}\n`);
process.exit(failed.length === 0 ? 0 : 1);
