/**
 * One check in a process of its own (verify/check-process.ts starts it):
 *
 *   node dist/verify/check-main.js NAME SCALE SEED
 *
 * sends the check's report to its parent and exits. Should the parent go
 * away first, it takes its temporary directory and its process group with it.
 */
import { rmSync } from 'node:fs';
import type { CheckReport } from './check.js';
import { crashReport } from './check.js';
import { CHECK_DIR } from './check-process.js';
import { CHECKS } from './checks.js';
import { descendants } from './process-tree.js';

async function main(): Promise<void> {
  const [name = '', scaleText = '', seedText = ''] = process.argv.slice(2);
  const scale = Number(scaleText);
  const seed = Number(seedText);
  const check = CHECKS.find((c) => c.name === name);
  let report: CheckReport;
  try {
    if (!check) throw new Error(`no check named ${JSON.stringify(name)}`);
    report = await check.run({ scale, progress: (line) => process.stderr.write(`  ${name}: ${line}\n`) }, seed);
  } catch (err) {
    report = crashReport(name, `the check itself crashed: ${(err as Error).stack ?? String(err)}`, seed, scale);
  }
  // the parent kills what the check left behind once this process is gone
  process.send?.(report, () => process.exit(0));
}

/** SIGKILLs what this process started until none is left alive, so nothing writes in the directory while it goes. */
function endStarted(): void {
  const deadline = Date.now() + 10_000;
  for (let started = descendants(process.pid); started.length > 0 && Date.now() < deadline; started = descendants(process.pid)) {
    for (const pid of started) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
  }
}

// an orphaned check would run on unseen, its hosts and processes with it
process.once('disconnect', () => {
  const dir = process.env[CHECK_DIR];
  try {
    endStarted();
    if (dir) rmSync(dir, { recursive: true, force: true, maxRetries: 5 });
  } finally {
    try {
      // whatever left the tree but not the group
      process.kill(-process.pid, 'SIGKILL');
    } catch {
      process.exit(1);
    }
  }
});
void main();
