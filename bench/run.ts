/**
 * `npm run bench`: performance figures of the whole stack on the simulated
 * host (SPEC §9). Prints one Markdown table; asserts nothing about time.
 *
 *   node dist/bench/run.js [--calls N] [--policy-ms MS] [--sizes 10,100,1000,3000] [--clients N]
 *                          [--service-mode resident|per-call] [--qrexec CHECKOUT] [--only SECTION,...]
 *
 * QMCP_BENCH_CALLS sets the default of --calls (20); QMCP_QREXEC that of
 * --qrexec, a qubes-core-qrexec work tree whose policy parser the policy
 * section also runs. Sections: latency, memory, start, policy, modes, listing.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { serviceModeOf, type ServiceMode } from '../src/dom0/install/manifest.js';
import { demoFleet } from '../src/sim/demo-fleet.js';
import type { Fleet } from '../src/sim/fleet.js';
import { startSimHost } from '../src/sim/host.js';
import { findBwrap } from '../src/sim/sandbox/index.js';
import { toolLatency } from './latency.js';
import { listingScale } from './listing.js';
import { policyRate } from './policy.js';
import { serviceModes } from './service-modes.js';
import { serviceStart } from './service-start.js';
import { serverMemory } from './sessions.js';
import { BENCH_SETTINGS, PRINCIPAL } from './settings.js';
import { renderTable, type Row } from './stats.js';

const SECTIONS = ['latency', 'memory', 'start', 'policy', 'modes', 'listing'] as const;
type Section = (typeof SECTIONS)[number];

interface Options {
  calls: number;
  policyMs: number;
  sizes: number[];
  clients: number;
  serviceMode: ServiceMode;
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

function mode(text: string): ServiceMode {
  if (text !== 'resident' && text !== 'per-call') throw new Error(`--service-mode must be resident or per-call, not ${JSON.stringify(text)}`);
  return serviceModeOf(text);
}

function options(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      calls: { type: 'string', default: process.env['QMCP_BENCH_CALLS'] ?? '20' },
      'policy-ms': { type: 'string', default: '2000' },
      sizes: { type: 'string', default: '10,100,1000,3000' },
      clients: { type: 'string', default: '10' },
      'service-mode': { type: 'string', default: 'resident' },
      qrexec: { type: 'string', default: process.env['QMCP_QREXEC'] },
      only: { type: 'string', default: SECTIONS.join(',') },
    },
  });
  return {
    calls: positive('--calls', values.calls ?? '20'),
    policyMs: positive('--policy-ms', values['policy-ms'] ?? '2000'),
    sizes: (values.sizes ?? '').split(',').map((s) => positive('--sizes', s.trim())),
    clients: positive('--clients', values.clients ?? '10'),
    serviceMode: mode(values['service-mode'] ?? 'resident'),
    qrexec: values.qrexec === '' ? undefined : values.qrexec,
    only: sections(values.only ?? ''),
  };
}

function log(line: string): void {
  process.stderr.write(`bench: ${line}\n`);
}

/** Runs `work` against a fresh simulated host with the bench settings, then removes it. */
async function withHost(fleet: Fleet, serviceMode: ServiceMode, work: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'qmcp-bench-'));
  const host = await startSimHost({ dir, fleet, install: true, initialSettings: BENCH_SETTINGS, serviceMode });
  try {
    await work(dir);
  } finally {
    await host.close();
    await rm(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const opts = options(process.argv.slice(2));
  const started = performance.now();
  const hasSandbox = findBwrap() !== undefined;
  const rows: Row[] = [];

  const fleet = demoFleet();
  // tool latency and server memory on a host serving dom0 services as --service-mode says
  if (opts.only.has('latency') || opts.only.has('memory')) {
    await withHost(fleet, opts.serviceMode, async (dir) => {
      if (opts.only.has('latency')) {
        log(`tool latency (${opts.serviceMode} dom0 services), ${opts.calls} calls each${hasSandbox ? '' : ' (no bwrap: in-qube tools skipped)'}`);
        rows.push(...(await toolLatency(dir, opts.calls, hasSandbox)));
      }
      if (opts.only.has('memory')) {
        log(`server memory, ${opts.clients} clients`);
        rows.push(...(await serverMemory(dir, opts.clients, opts.calls)));
      }
    });
  }
  // what starting a per-call service costs needs the executables; the policy is the same either way
  if (opts.only.has('start') || opts.only.has('policy')) {
    await withHost(fleet, 'per-call', async (dir) => {
      if (opts.only.has('start')) {
        log('dom0 service start');
        rows.push(...(await serviceStart(dir, PRINCIPAL, opts.calls)));
      }
      if (opts.only.has('policy')) {
        log(`policy engine, ${opts.policyMs} ms${opts.qrexec === undefined ? ' (no --qrexec: Qubes parser skipped)' : ', then Qubes parser as long'}`);
        rows.push(...policyRate(dir, fleet, opts.policyMs, opts.qrexec));
      }
    });
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
      `calls per figure: ${opts.calls}; tool latency and server memory with ${opts.serviceMode} dom0 services; total ${((performance.now() - started) / 1000).toFixed(0)} s`,
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
