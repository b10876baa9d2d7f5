/**
 * `npm run verify`: the verification suite at a larger budget with a random
 * seed it prints, ending with one table of what was tried and what held.
 *
 *   node dist/verify/run.js [--scale N] [--seed S] [--only NAME,...] [--service-mode per-call|resident] [--jobs N] [--tmpdir DIR]
 *
 * QMCP_VERIFY_SCALE sets the default of --scale (10, the full budget: about
 * 100,000 raw calls compared, 10,000 sequences, 10,000 malformed inputs per
 * dom0 service). --service-mode (default QMCP_DOM0_SERVICE_MODE, else
 * resident) is how the simulated hosts serve the dom0 services: the resident
 * process, as an install does by choice, or an executable per call. Each
 * check runs in a process of its own, --jobs (default QMCP_VERIFY_JOBS,
 * else 2) at a time, longest first; the table keeps the checks' order.
 * Their temporary files go under --tmpdir (default QMCP_VERIFY_TMPDIR,
 * else /dev/shm where it is a directory, else the system's): the simulated
 * hosts' every call writes and syncs files, which on a disk costs more than
 * the call.
 * Exit 0 when nothing failed, 1 when something did (each failure prints
 * its reproduction); stopped by SIGINT or SIGTERM, it kills its checks and
 * removes their files first.
 */
import { randomInt } from 'node:crypto';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { CheckReport, Failure } from './check.js';
import { bounded } from './check.js';
import { CheckProcesses } from './check-process.js';
import { OPERATIONS } from '../src/shared/model/capabilities.js';
import { CHECKS } from './checks.js';
import { verifyCoverage } from './coverage.js';
import { coverageFailures } from './gaps.js';

/** The order the checks start in: the long ones first, so the run does not end on one of them alone (noninterference, the longest, starts when malformed ends, beside sequences). */
const START_ORDER = ['malformed', 'sequences', 'noninterference', 'timing', 'faults', 'races', 'approval-channel', 'tamper', 'flood', 'concurrency'];
const startRank = (name: string): number => (START_ORDER.includes(name) ? START_ORDER.indexOf(name) : START_ORDER.length);

/** A directory in memory where there is one (Linux's /dev/shm), else the system's temporary directory. */
function memoryDir(): string {
  try {
    if (statSync('/dev/shm').isDirectory()) return '/dev/shm';
  } catch {
    // none
  }
  return tmpdir();
}

function positive(name: string, text: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, not ${JSON.stringify(text)}`);
  return n;
}

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      scale: { type: 'string', default: process.env['QMCP_VERIFY_SCALE'] ?? '10' },
      seed: { type: 'string' },
      only: { type: 'string' },
      'service-mode': { type: 'string' },
      jobs: { type: 'string', default: process.env['QMCP_VERIFY_JOBS'] || '2' },
      tmpdir: { type: 'string', default: process.env['QMCP_VERIFY_TMPDIR'] || memoryDir() },
    },
    strict: true,
  });
  const scale = positive('--scale', values.scale);
  const seed = values.seed === undefined ? randomInt(0, 2 ** 31) : positive('--seed', values.seed);
  const only = values.only?.split(',').filter(Boolean);
  const jobs = positive('--jobs', values.jobs);
  if (jobs < 1) throw new Error('--jobs must be at least 1');
  const mode = values['service-mode'] ?? (process.env['QMCP_DOM0_SERVICE_MODE'] || 'resident');
  if (mode !== 'per-call' && mode !== 'resident') throw new Error(`--service-mode must be per-call or resident, not ${JSON.stringify(mode)}`);
  // the simulated hosts read it (src/sim/host.ts envServiceMode)
  process.env['QMCP_DOM0_SERVICE_MODE'] = mode;
  const checks = CHECKS.filter((c) => !only || only.includes(c.name));
  process.stdout.write(`qmcp verify: seed ${seed}, scale ${scale}, ${checks.length} check(s), ${mode} dom0 services\n`);

  const rows: [string, string, string][] = [];
  // every operation of the model has its input in every check, or verify fails naming the gap
  const gaps = verifyCoverage();
  rows.push(['coverage', 'operations of the model', String(OPERATIONS.length)], ['coverage', 'gaps', String(gaps.length)]);
  const failures: Failure[] = coverageFailures('coverage', gaps);
  // short: the checks' sockets live under it, and a socket's path has room for about 100 bytes
  const processes = new CheckProcesses(mkdtempSync(join(values.tmpdir, 'qv')), process.env);
  const stop = (signal: NodeJS.Signals): void => {
    process.stderr.write(`qmcp verify: ${signal}: stopping the checks\n`);
    void processes.stop().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const byCost = [...checks].sort((a, b) => startRank(a.name) - startRank(b.name));
  const reports = new Map<string, { report: CheckReport; seconds: string }>();
  await bounded(byCost.length, jobs, async (i) => {
    const check = byCost[i] as (typeof checks)[number];
    const started = Date.now();
    process.stderr.write(`  ${check.name}: ${check.summary} ...\n`);
    const { report, leftover } = await processes.run(check.name, scale, seed);
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    if (leftover.length > 0) process.stderr.write(`  ${check.name}: left ${leftover.length} process(es) running, killed\n`);
    process.stderr.write(`  ${check.name}: ${report.failures.length} failure(s) in ${seconds} s\n`);
    // a long run's failures are shown as each check ends, not only in the final table
    for (const f of report.failures) process.stderr.write(`  FAIL ${f.check}: ${f.what}\n    reproduce: ${f.reproduction}\n`);
    reports.set(check.name, { report, seconds });
  });
  await processes.stop();
  for (const check of checks) {
    const { report, seconds } = reports.get(check.name) as { report: CheckReport; seconds: string };
    for (const f of report.figures) rows.push([check.name, f.label, f.value]);
    rows.push([check.name, 'failures', String(report.failures.length)]);
    rows.push([check.name, 'seconds', seconds]);
    failures.push(...report.failures);
  }

  const widths = [0, 1, 2].map((i) => Math.max(...[['check', 'figure', 'value'], ...rows].map((r) => (r[i] as string).length)));
  const line = (r: string[]): string => `| ${r.map((c, i) => c.padEnd(widths[i] as number)).join(' | ')} |`;
  process.stdout.write(`\n${line(['check', 'figure', 'value'])}\n|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|\n`);
  for (const r of rows) process.stdout.write(line(r) + '\n');
  process.stdout.write(`\nfailures: ${failures.length} (seed ${seed}, scale ${scale})\n`);
  for (const f of failures) process.stdout.write(`\nFAIL ${f.check}: ${f.what}\n  reproduce: ${f.reproduction}\n`);
  return failures.length === 0 ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`qmcp verify: ${(err as Error).message}\n`);
    process.exit(2);
  },
);
