/**
 * The timing check's policy paths, measured in one process: each path is a
 * pair of calls to the engine (an absent target and an outside one, or one
 * target on system info without and with one outside qube), timed as
 * verify/timing/measure.ts times them. What comes back per path is the
 * difference of the two classes' cropped means, so that a caller can put
 * the figures of several processes side by side (verify/timing/across.ts).
 */
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Policy, SystemInfo } from '../../src/shared/policy/index.js';
import { prng } from '../malformed/host.js';
import { crop, sampleSync, welch } from './measure.js';

/** Two targets, absent first; or one target on `without` against `system`. */
export type PolicyPath =
  | { readonly label: string; readonly service: string; readonly source: string; readonly targets: readonly [string, string] }
  | { readonly label: string; readonly service: string; readonly source: string; readonly target: string };

/** Where the policy comes from: a module's export called with the dom0 root (a weakened variant names its copy). */
export interface EngineModule {
  readonly file: string;
  readonly name: string;
}

/** The real engine: the policy as dom0 loads it. */
export const REAL_ENGINE: EngineModule = { file: fileURLToPath(new URL('../../src/shared/policy/index.js', import.meta.url)), name: 'loadPolicyFromRoot' };

/** The policy of the dom0 tree at `root`, loaded by the engine module. */
export async function loadPolicy(engine: EngineModule, root: string): Promise<Policy> {
  const load = ((await import(pathToFileURL(engine.file).href)) as Record<string, (root: string) => Policy | Promise<Policy>>)[engine.name];
  if (!load) throw new Error(`${engine.file} exports no ${engine.name}`);
  return load(root);
}

export interface PolicyJob {
  readonly root: string;
  readonly engine: EngineModule;
  readonly system: SystemInfo;
  readonly without: SystemInfo;
  readonly paths: readonly PolicyPath[];
  /** Samples per class, each of `batch` evaluations. */
  readonly n: number;
  readonly batch: number;
  readonly warm: number;
  readonly seed: number;
}

/** One process's reading of one path. */
export interface PathReading {
  readonly label: string;
  /** Welch's t of absent against outside, in this process. */
  readonly t: number;
  /** Outside minus absent, ns per evaluation (cropped means). */
  readonly diffNs: number;
}

const mean = (xs: readonly number[]): number => xs.reduce((s, x) => s + x, 0) / xs.length;

/** Every path of the job, in order, one after the other in this process. */
export function measurePaths(policy: Policy, job: PolicyJob): PathReading[] {
  const rand = prng(job.seed);
  return job.paths.map((p) => {
    const samples =
      'targets' in p
        ? sampleSync((target: string) => policy.evaluate({ service: p.service, argument: '', source: p.source, target }, job.system), p.targets, job.n, job.batch, rand, job.warm)
        : sampleSync((sys: SystemInfo) => policy.evaluate({ service: p.service, argument: '', source: p.source, target: p.target }, sys), [job.without, job.system], job.n, job.batch, rand, job.warm);
    const [a, b] = crop(...samples);
    return { label: p.label, t: welch(a, b), diffNs: ((mean(b) - mean(a)) * 1e6) / job.batch };
  });
}
