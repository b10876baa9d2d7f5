/**
 * Flood (docs/threat-model.md, "A flood of calls"): the resident dom0
 * service, as its own process, takes N calls as fast as a client can send
 * them, half from a sandbox qube and half from the principal, every one
 * refusable (an absent qube, a new name each time, so aggregation alone
 * cannot absorb them), and one legitimate call of the principal during
 * the sandbox's half. Two runs: one keeping every audit file, where the
 * counts in the log must add up to the calls refused; one with a small
 * retention, where the log's disk use stays within retention, the entries
 * written within what the rate allows, the chain verifies from its prune
 * point, and the resident's memory stays bounded.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { auditLogPath, verifyAudit } from '../../src/dom0/audit/index.js';
import type { AuditEntry } from '../../src/dom0/audit/index.js';
import { parseLine } from '../../src/dom0/audit/entry.js';
import type { Budget, Check, CheckReport, Failure } from '../check.js';
import { BASE_SETTINGS, InProcessHost, PRINCIPAL, RESIDENT_MAIN, startResidentProcess, type ResidentProcess } from '../malformed/host.js';
import { qrexecService } from '../qrexec-service.js';

const NAME = 'flood';

export const FLOOD_RATE = { perSecond: 2, burst: 20 } as const;
const KiB = 1024;
const RETENTION = { fileBytes: KiB, keepBytes: KiB, keepDays: null };
/** The longest line the log writes (entry.ts MAX_LINE_BYTES). */
const MAX_LINE = 128 * KiB;
/** Growth of the resident's memory over the flood that counts as unbounded. */
export const MEMORY_BOUND = 64 * 1024 * 1024;
const SANDBOX = 'ai-flood-box';
/** A qube the principal sees: the legitimate call's target. */
const VISIBLE = 'ai-tpl';
const IN_FLIGHT = 32;

export interface FloodSut {
  /** The resident entry to run; a weakened copy in the tests. */
  readonly residentMain?: string;
}

/** One call from `source`, timed: its status and how long it took. */
async function timedCall(resident: ResidentProcess, source: string, full: string): Promise<{ status: number; ms: number }> {
  const start = performance.now();
  const r = await resident.call(full, '', source);
  return { status: r.status, ms: performance.now() - start };
}

/** Resident set size of a process in bytes (Linux); null elsewhere. */
function rss(pid: number): number | null {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

function auditFiles(root: string): string[] {
  const dir = dirname(auditLogPath(root));
  return readdirSync(dir).filter((n) => /^audit\.log(\.\d+)?$/.test(n)).map((n) => join(dir, n));
}

function entriesOf(root: string): AuditEntry[] {
  const files = auditFiles(root).sort((a, b) => Number(a.split('.').pop()) - Number(b.split('.').pop()));
  return files.flatMap((f) =>
    readFileSync(f, 'utf8').split('\n').filter(Boolean).flatMap((l) => {
      const p = parseLine(l);
      return 'entry' in p ? [p.entry] : [];
    }),
  );
}

interface RunResult {
  readonly sent: number;
  readonly refused: number;
  readonly legit: { status: number; ms: number } | null;
  readonly seconds: number;
  readonly peakGrowth: number | null;
  readonly root: string;
}

/** N calls, half from the sandbox (with the legitimate call halfway through its half), half from the principal. */
async function flood(h: InProcessHost, main: string, calls: number): Promise<RunResult> {
  const resident = await startResidentProcess(h, 'qmcp.Info', main);
  const base = rss(resident.pid);
  let peak = base;
  const sampler = setInterval(() => {
    const now = rss(resident.pid);
    if (now !== null && (peak === null || now > peak)) peak = now;
  }, 100);
  const start = performance.now();
  let refused = 0;
  let legit: { status: number; ms: number } | null = null;
  try {
    for (const [source, count] of [[SANDBOX, Math.ceil(calls / 2)], [PRINCIPAL, Math.floor(calls / 2)]] as const) {
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < count) {
          const i = next++;
          if (source === SANDBOX && i === Math.floor(count / 2)) legit = await timedCall(resident, PRINCIPAL, qrexecService('info', VISIBLE));
          const r = await timedCall(resident, source, qrexecService('info', `ai-flood-${source === SANDBOX ? 's' : 'p'}${i}`));
          if (r.status === 126) refused++;
        }
      };
      await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
    }
  } finally {
    clearInterval(sampler);
    // a stop writes the counts still pending
    await resident.stop();
  }
  return { sent: calls, refused, legit, seconds: (performance.now() - start) / 1000, peakGrowth: base === null || peak === null ? null : peak - base, root: h.root };
}

/**
 * Entries the rate lets two callers cause over `seconds`: at most two per
 * admitted call (its own, and a count it pushed out), one count per caller
 * per window, and a prune checkpoint per rotated file, which holds at least
 * 32 entries of the flood's size.
 */
export function entryBound(seconds: number, written: number): number {
  const admitted = 2 * (FLOOD_RATE.burst + Math.ceil(FLOOD_RATE.perSecond * seconds));
  return 2 * admitted + 2 * (Math.ceil(seconds / 10) + 2) + Math.ceil(written / 32) + 10;
}

export function makeFloodCheck(sut: FloodSut = {}): Check {
  return {
    name: NAME,
    summary: 'N refusable calls from the principal and a sandbox qube against the resident service: audit disk, entries written and memory bounded, counts whole, chain verified, a legitimate call served',
    async run(budget: Budget): Promise<CheckReport> {
      const main = sut.residentMain ?? RESIDENT_MAIN;
      const calls = 2000 * Math.max(1, budget.scale);
      const failures: Failure[] = [];
      const fail = (what: string): void => {
        failures.push({ check: NAME, what, reproduction: `--scale ${budget.scale} --only ${NAME}` });
      };
      const figures = [{ label: 'calls sent (counting run + bounded run)', value: `${Math.min(calls, 20_000)} + ${calls}` }];

      // run 1: every file kept, so every refusal can be counted
      const counting = Math.min(calls, 20_000);
      const h1 = await InProcessHost.start({ settings: { ...BASE_SETTINGS, rate: FLOOD_RATE }, serviceMode: 'per-call' });
      try {
        const r = await flood(h1, main, counting);
        const refusals = entriesOf(h1.root).filter((e) => e.kind === 'refusal');
        const counted = refusals.reduce((n, e) => n + (e.count ?? 1), 0);
        const limited = refusals.filter((e) => e.operation === 'rate-limit').reduce((n, e) => n + (e.count ?? 1), 0);
        if (r.refused !== r.sent) fail(`${r.sent - r.refused} of ${r.sent} refusable calls were not refused`);
        if (counted !== r.refused) fail(`the audit log counts ${counted} refusals for ${r.refused} calls refused`);
        if (r.legit?.status !== 0) fail(`the legitimate call during the flood was not served (status ${r.legit?.status})`);
        figures.push({ label: 'refused by the rate limit, without per-call work (counting run)', value: `${limited} of ${r.sent}` });
        figures.push({ label: 'audit entries for them (counting run)', value: String(refusals.length) });
      } finally {
        await h1.done();
      }

      // run 2: a small retention, the full count
      const h2 = await InProcessHost.start({ settings: { ...BASE_SETTINGS, rate: FLOOD_RATE, auditRetention: RETENTION }, serviceMode: 'per-call' });
      try {
        const r = await flood(h2, main, calls);
        const report = await verifyAudit({ root: h2.root });
        const entries = entriesOf(h2.root);
        const written = report.head?.seq ?? 0;
        const prunes = entries.filter((e) => e.kind === 'prune').length + (report.pruned ? 1 : 0);
        const disk = auditFiles(h2.root).reduce((n, f) => n + statSync(f).size, 0);
        const diskBound = RETENTION.keepBytes + RETENTION.fileBytes + MAX_LINE;
        if (!report.valid) fail(`the audit chain does not verify: ${report.problems.slice(0, 3).map((p) => p.what).join('; ')}`);
        else if (report.pruned === null) fail('retention pruned nothing: the flood was too small to show the prune');
        if (disk > diskBound) fail(`the audit log uses ${disk} bytes of dom0's disk, over its bound of ${diskBound}`);
        const rateBound = entryBound(r.seconds, written);
        if (written > rateBound) fail(`${written} audit entries written for ${r.sent} calls in ${r.seconds.toFixed(1)} s: over the rate's bound of ${rateBound}`);
        if (r.legit?.status !== 0) fail(`the legitimate call during the flood was not served (status ${r.legit?.status})`);
        if (r.peakGrowth !== null && r.peakGrowth > MEMORY_BOUND) fail(`the resident grew by ${r.peakGrowth} bytes during the flood, over ${MEMORY_BOUND}`);
        figures.push(
          { label: 'calls per second sent (bounded run)', value: (r.sent / r.seconds).toFixed(0) },
          { label: 'audit entries written (bounded run)', value: String(written) },
          { label: 'audit disk in use / bound', value: `${disk} / ${diskBound} bytes` },
          { label: 'prune checkpoints in the kept files', value: String(prunes) },
          { label: 'resident memory growth, peak', value: r.peakGrowth === null ? 'n/a (no /proc)' : `${(r.peakGrowth / 2 ** 20).toFixed(1)} MiB` },
          { label: 'legitimate call during the flood', value: r.legit ? `status ${r.legit.status} in ${r.legit.ms.toFixed(0)} ms` : 'not made' },
        );
      } finally {
        await h2.done();
      }
      return { figures, failures };
    },
  };
}

export const floodCheck = makeFloodCheck();
