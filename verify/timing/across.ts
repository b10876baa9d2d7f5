/**
 * The policy paths measured across processes: the same job in `k` fresh
 * processes one after another, each process's difference of means taken as
 * one sample (verify/timing/policy-process.ts).
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { hangBoundMs } from '../hang-bound.js';
import type { PathReading, PolicyJob } from './policy-paths.js';

const CHILD = fileURLToPath(new URL('./policy-process.js', import.meta.url));

/** One process's readings of the job's paths. */
async function once(job: PolicyJob): Promise<PathReading[]> {
  const child = spawn(process.execPath, [CHILD], { stdio: ['pipe', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (b: Buffer) => out.push(b));
  child.stderr.on('data', (b: Buffer) => err.push(b));
  child.stdin.end(JSON.stringify(job));
  // Bounds a hang, never times the work: a job takes seconds on an idle machine.
  const bound = setTimeout(() => child.kill('SIGKILL'), hangBoundMs(10 * 60_000));
  try {
    const code = await new Promise<number | null>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', resolve);
    });
    if (code !== 0) throw new Error(`policy timing process exited ${code}: ${Buffer.concat(err).toString('utf8').slice(-2000)}`);
  } finally {
    clearTimeout(bound);
  }
  return JSON.parse(Buffer.concat(out).toString('utf8')) as PathReading[];
}

/** Each path's readings, one per process, in `k` processes with seeds job.seed, job.seed + 1, .... */
export async function acrossProcesses(job: PolicyJob, k: number): Promise<Map<string, PathReading[]>> {
  const byPath = new Map<string, PathReading[]>(job.paths.map((p) => [p.label, []]));
  for (let i = 0; i < k; i++) {
    for (const r of await once({ ...job, seed: job.seed + i })) byPath.get(r.label)?.push(r);
  }
  return byPath;
}

/** One-sample t of the processes' differences against zero. */
export function acrossT(diffs: readonly number[]): number {
  const m = diffs.reduce((s, x) => s + x, 0) / diffs.length;
  const v = diffs.reduce((s, x) => s + (x - m) ** 2, 0) / Math.max(1, diffs.length - 1);
  return v === 0 ? 0 : m / Math.sqrt(v / diffs.length);
}
