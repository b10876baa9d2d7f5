/**
 * `npm run verify`: the verification suite at a larger budget with a random
 * seed it prints, ending with one table of what was tried and what held.
 *
 *   node dist/verify/run.js [--scale N] [--seed S] [--only NAME,...] [--service-mode per-call|resident]
 *
 * QMCP_VERIFY_SCALE sets the default of --scale (10, the full budget: about
 * 100,000 raw calls compared, 10,000 sequences, 10,000 malformed inputs per
 * dom0 service). --service-mode (default QMCP_DOM0_SERVICE_MODE, else
 * resident) is how the simulated hosts serve the dom0 services: the resident
 * process, as an install does by choice, or an executable per call. Exit 0
 * when nothing failed, 1 when something did (each failure prints its
 * reproduction).
 */
import { randomInt } from 'node:crypto';
import { parseArgs } from 'node:util';
import type { CheckReport, Failure } from './check.js';
import { OPERATIONS } from '../src/shared/model/capabilities.js';
import { CHECKS } from './checks.js';
import { verifyCoverage } from './coverage.js';
import { coverageFailures } from './gaps.js';

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
    },
    strict: true,
  });
  const scale = positive('--scale', values.scale);
  const seed = values.seed === undefined ? randomInt(0, 2 ** 31) : positive('--seed', values.seed);
  const only = values.only?.split(',').filter(Boolean);
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
  for (const check of checks) {
    const started = Date.now();
    process.stderr.write(`  ${check.name}: ${check.summary} ...\n`);
    let report: CheckReport;
    try {
      report = await check.run({ scale }, seed);
    } catch (err) {
      report = { figures: [], failures: [{ check: check.name, what: `the check itself crashed: ${(err as Error).stack ?? String(err)}`, reproduction: `--seed ${seed} --scale ${scale} --only ${check.name}` }] };
    }
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    process.stderr.write(`  ${check.name}: ${report.failures.length} failure(s) in ${seconds} s\n`);
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
