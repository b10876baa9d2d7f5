/** `npm run verify` says when each check ends, with its failures and seconds; stopped, it leaves nothing behind. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { hangBoundMs } from '../../verify/hang-bound.js';
import { alive, descendants, killTree } from '../../verify/process-tree.js';
import { weakenedCopy } from '../../verify/weakened-module.js';

const RUN = join(import.meta.dirname, '..', '..', 'verify', 'run.js');

test('verify/run prints a line per check as it starts and ends: name, failures, seconds', async () => {
  const child = spawn(process.execPath, [RUN, '--only', 'tamper', '--scale', '1', '--seed', '5'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const status = await new Promise<number | null>((r) => child.once('close', r));
  assert.equal(status, 0, stdout + stderr);
  const lines = stderr.split('\n');
  const start = lines.findIndex((l) => l.startsWith('  tamper: ') && l.endsWith(' ...'));
  const end = lines.findIndex((l) => /^ {2}tamper: 0 failure\(s\) in \d+\.\d s$/.test(l));
  assert.ok(start >= 0 && end > start, stderr);
  assert.match(stdout, /\| tamper +\| seconds +\| \d+\.\d +\|/);
  // the model's coverage is checked whichever checks run
  assert.match(stdout, /\| coverage +\| gaps +\| 0 +\|/);
});

/**
 * A run stopped by SIGINT or SIGTERM while its checks run (two at a time,
 * with resident dom0 services and simulated hosts up) leaves no process it
 * started and nothing in its temporary directory. The run gets a directory
 * of its own (--tmpdir and TMPDIR); what it started is every descendant seen
 * just before the signal, and every process naming that directory.
 */
async function stopMidway(signal: NodeJS.Signals, run = RUN): Promise<{ status: number | null; tree: number[]; tmp: string; stderr: string }> {
  const tmp = mkdtempSync(join(tmpdir(), 'qt'));
  // concurrency and approval-channel boot full simulated hosts, with the resident dom0 services as processes, and end within seconds (a weakened run's checks are waited out)
  const child = spawn(process.execPath, [run, '--only', 'concurrency,approval-channel', '--scale', '1', '--seed', '5', '--jobs', '2', '--service-mode', 'resident', '--tmpdir', tmp], {
    env: { ...process.env, TMPDIR: tmp },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  // its exit, not its stderr's close: a check left running would hold that open
  const exited = new Promise<number | null>((r) => child.once('exit', r));
  // both checks running, each with a process of its own beyond its own (a resident dom0 service)
  let tree: number[] = [];
  for (;;) {
    tree = descendants(child.pid as number);
    const workers = tree.filter((p) => parentOf(p) === child.pid);
    if (workers.length === 2 && workers.every((w) => descendants(w).length > 0)) break;
    assert.equal(child.exitCode, null, `the run ended before both checks were up: ${stderr}`);
    // each look reads every process of the machine: a look per turn of the event loop took a core from the checks booting
    await new Promise((r) => setTimeout(r, 10));
  }
  child.kill(signal);
  const status = await exited;
  return { status, tree, tmp, stderr };
}

function parentOf(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return -1;
  }
}

/** Live processes whose command line or environment names `dir`. */
function naming(dir: string): number[] {
  return readdirSync('/proc')
    .filter((n) => /^\d+$/.test(n))
    .map(Number)
    .filter((pid) => {
      try {
        return alive(pid) && [readFileSync(`/proc/${pid}/cmdline`), readFileSync(`/proc/${pid}/environ`)].some((b) => b.includes(dir));
      } catch {
        return false;
      }
    });
}

/** What a stopped run left: live processes of its tree or naming its TMPDIR, files there. */
function leftovers(r: { tree: number[]; tmp: string }): { processes: number[]; files: string[] } {
  return { processes: [...new Set([...r.tree.filter(alive), ...naming(r.tmp)])], files: readdirSync(r.tmp) };
}

/** Cleans up after a weakened run: its processes killed, its TMPDIR removed. */
function sweep(r: { tree: number[]; tmp: string }): void {
  for (const pid of [...r.tree, ...naming(r.tmp)]) killTree(pid);
  rmSync(r.tmp, { recursive: true, force: true });
}

for (const [signal, code] of [
  ['SIGTERM', 143],
  ['SIGINT', 130],
] as const) {
  test(`verify/run stopped by ${signal} leaves no process it started and no temporary files`, { skip: !existsSync('/proc/self/stat') }, async () => {
    const r = await stopMidway(signal);
    try {
      assert.equal(r.status, code, r.stderr);
      assert.deepEqual(leftovers(r), { processes: [], files: [] }, r.stderr);
    } finally {
      sweep(r);
    }
  });
}

const VERIFY = join(import.meta.dirname, '..', '..', 'verify');

test('weakened: a run that exits on the signal without stopping its checks is caught leaving files', { skip: !existsSync('/proc/self/stat') }, async () => {
  const weakened = weakenedCopy(RUN, 'void processes.stop().finally(() => process.exit(', 'void Promise.resolve().finally(() => process.exit(');
  const r = await stopMidway('SIGTERM', weakened);
  try {
    assert.notDeepEqual(leftovers(r).files, []);
  } finally {
    sweep(r);
  }
});

test('weakened: stopping the checks without removing their directories is caught leaving files', { skip: !existsSync('/proc/self/stat') }, async () => {
  const processes = weakenedCopy(join(VERIFY, 'check-process.js'), '        rmSync(this.dir, { recursive: true, force: true });\n    }\n}', '    }\n}');
  const weakened = weakenedCopy(RUN, 'async function main(', 'async function main(', { [join(VERIFY, 'check-process.js')]: processes });
  const r = await stopMidway('SIGTERM', weakened);
  try {
    const left = leftovers(r);
    assert.deepEqual(left.processes, []);
    assert.notDeepEqual(left.files, []);
  } finally {
    sweep(r);
  }
});

/** run.js with its checks run by a check-main.js whose `guard` is replaced by `weakened`. */
function runWithCheckMain(guard: string, weakened: string): string {
  const main = weakenedCopy(join(VERIFY, 'check-main.js'), guard, weakened);
  const check = weakenedCopy(join(VERIFY, 'check.js'), "join(dirname(fileURLToPath(import.meta.url)), 'check-main.js')", JSON.stringify(main));
  const processes = weakenedCopy(join(VERIFY, 'check-process.js'), 'export class CheckProcesses', 'export class CheckProcesses', { [join(VERIFY, 'check.js')]: check });
  return weakenedCopy(RUN, 'async function main(', 'async function main(', { [join(VERIFY, 'check-process.js')]: processes });
}

/** Once every process of a run killed outright has ended, on its own or not: what is left in the run's own directory. */
async function afterKilledRun(r: { tree: number[]; tmp: string }): Promise<string[]> {
  const deadline = Date.now() + hangBoundMs(60_000);
  while (r.tree.some(alive)) {
    assert.ok(Date.now() < deadline, `processes of the killed run outlived it: ${r.tree.filter(alive).join(' ')}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const left = leftovers(r);
  assert.deepEqual(left.processes, []);
  // only the run's own directory, which nothing but the run could remove
  assert.equal(left.files.length, 1);
  return readdirSync(join(r.tmp, left.files[0] as string));
}

test('a run killed outright (SIGKILL) leaves no check running: each ends with its run, taking its own files', { skip: !existsSync('/proc/self/stat') }, async () => {
  const r = await stopMidway('SIGKILL');
  try {
    assert.equal(r.status, null);
    assert.deepEqual(await afterKilledRun(r), []);
  } finally {
    sweep(r);
  }
});

test('weakened: checks that go on when their run is gone are caught leaving their files', { skip: !existsSync('/proc/self/stat') }, async () => {
  const weakened = runWithCheckMain("process.once('disconnect', () => {", "process.once('disconnect-never', () => {");
  const r = await stopMidway('SIGKILL', weakened);
  try {
    assert.notDeepEqual(await afterKilledRun(r), []);
  } finally {
    sweep(r);
  }
});

test('a check whose process ends without a report is a failure of that check, with its reproduction; the table keeps its rows', async () => {
  // the check that ends is the long one, so the run waits only on the short tamper check
  const run = runWithCheckMain('report = await check.run(', "if (name === 'concurrency') process.exit(3);\n        report = await check.run(");
  const child = spawn(process.execPath, [run, '--only', 'tamper,concurrency', '--scale', '1', '--seed', '5'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.resume();
  const status = await new Promise<number | null>((r) => child.once('close', r));
  assert.equal(status, 1, stdout);
  assert.match(stdout, /\| tamper +\| failures +\| 0 +\|/);
  assert.match(stdout, /\| concurrency +\| failures +\| 1 +\|/);
  assert.ok(stdout.indexOf('| tamper ') < stdout.indexOf('| concurrency '), stdout);
  assert.match(stdout, /\nFAIL concurrency: the check's process ended \(exit status 3\) without a report\n {2}reproduce: --seed 5 --scale 1 --only concurrency\n/);
});
