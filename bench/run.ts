/**
 * `npm run bench`: performance figures of the whole stack on the simulated
 * host (SPEC §9). Prints one Markdown table; asserts nothing about time.
 *
 *   node dist/bench/run.js [--calls N] [--policy-ms MS] [--sizes 10,100,1000,3000]
 *                          [--qrexec CHECKOUT] [--only SECTION,...]
 *
 * QMCP_BENCH_CALLS sets the default of --calls (20); QMCP_QREXEC that of
 * --qrexec, a qubes-core-qrexec work tree whose policy parser the policy
 * section also runs. Sections: latency, start, policy, modes, listing.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { demoFleet } from '../src/sim/demo-fleet.js';
import { startSimHost } from '../src/sim/host.js';
import { findBwrap } from '../src/sim/sandbox/index.js';
import { toolLatency } from './latency.js';
import { listingScale } from './listing.js';
import { policyRate } from './policy.js';
import { serviceModes } from './service-modes.js';
import { serviceStart } from './service-start.js';
import { BENCH_SETTINGS, PRINCIPAL } from './settings.js';
import { renderTable, type Row } from './stats.js';

const SECTIONS = ['latency', 'start', 'policy', 'modes', 'listing'] as const;
type Section = (typeof SECTIONS)[number];

interface Options {
  calls: number;
  policyMs: number;
  sizes: number[];
  qrexec: string | undefined;
  only: ReadonlySet<Section>;
}

function sections(text: string): Set<Section> {
  const names = text.split(',').map((s) => s.trim());
  for (const name of names) {
    if (!(SECTIONS as readonly string[]).includes(name)) throw new Error(`--only takes ${SECTIONS.join(', ')}, not ${JSON.stringify(name)}`);
  }
  return new Set(names as Section[]);
}

function positive(name: string, text: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, not ${JSON.stringify(text)}`);
  return n;
}

function options(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      calls: { type: 'string', default: process.env['QMCP_BENCH_CALLS'] ?? '20' },
      'policy-ms': { type: 'string', default: '2000' },
      sizes: { type: 'string', default: '10,100,1000,3000' },
      qrexec: { type: 'string', default: process.env['QMCP_QREXEC'] },
      only: { type: 'string', default: SECTIONS.join(',') },
    },
  });
  return {
    calls: positive('--calls', values.calls ?? '20'),
    policyMs: positive('--policy-ms', values['policy-ms'] ?? '2000'),
    sizes: (values.sizes ?? '').split(',').map((s) => positive('--sizes', s.trim())),
    qrexec: values.qrexec === '' ? undefined : values.qrexec,
    only: sections(values.only ?? ''),
  };
}

function log(line: string): void {
  process.stderr.write(`bench: ${line}\n`);
}

async function main(): Promise<void> {
  const opts = options(process.argv.slice(2));
  const started = performance.now();
  const hasSandbox = findBwrap() !== undefined;
  const rows: Row[] = [];

  const fleet = demoFleet();
  const dir = await mkdtemp(join(tmpdir(), 'qmcp-bench-'));
  const host = await startSimHost({ dir, fleet, install: true, initialSettings: BENCH_SETTINGS });
  try {
    if (opts.only.has('latency')) {
      log(`tool latency, ${opts.calls} calls each${hasSandbox ? '' : ' (no bwrap: in-qube tools skipped)'}`);
      rows.push(...(await toolLatency(dir, opts.calls, hasSandbox)));
    }
    if (opts.only.has('start')) {
      log('dom0 service start');
      rows.push(...(await serviceStart(dir, PRINCIPAL, opts.calls)));
    }
    if (opts.only.has('policy')) {
      log(`policy engine, ${opts.policyMs} ms${opts.qrexec === undefined ? ' (no --qrexec: Qubes parser skipped)' : ', then Qubes parser as long'}`);
      rows.push(...policyRate(dir, fleet, opts.policyMs, opts.qrexec));
    }
  } finally {
    await host.close();
    await rm(dir, { recursive: true, force: true });
  }
  if (opts.only.has('modes')) {
    log('dom0 service calls, per-call and resident');
    rows.push(...(await serviceModes(fleet, 'ai-sandbox', opts.calls)));
  }
  if (opts.only.has('listing')) {
    log(`listing with ${opts.sizes.join(', ')} qubes`);
    rows.push(...(await listingScale(opts.sizes, opts.calls)));
  }

  const cpu = cpus();
  process.stdout.write(
    [
      `qmcp benchmark, ${new Date().toISOString()}`,
      `node ${process.version}, ${process.platform}/${process.arch}, ${cpu.length} cores (${cpu[0]?.model.trim() ?? 'unknown cpu'})`,
      `calls per figure: ${opts.calls}; total ${((performance.now() - started) / 1000).toFixed(0)} s`,
      '',
      renderTable(rows),
      '',
    ].join('\n'),
  );
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
