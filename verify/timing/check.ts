/**
 * Timing (SPEC §4.1, §9), the dudect method: for each path that takes a
 * qube name, calls naming a qube that exists nowhere and calls naming a
 * qube outside the umbrella are interleaved in a seeded random order and
 * timed (verify/timing/measure.ts); Welch's t between the two classes is reported per path. The dom0
 * services are timed in this process through the real runner on a
 * simulated qubesd (their own code path); the tag-scoped calls that only
 * the qrexec policy decides are timed through the policy engine on the
 * installed policy, in fresh processes, a process being one sample
 * (verify/timing/across.ts: a difference of a few ns whose sign changes
 * with the process is its layout, one that keeps its sign is the code's).
 * The two names have the same length and prefix. Then
 * every form of special target (a name, `uuid:`, `@dispvm:NAME`,
 * `@dispvm:uuid:`), naming an outside qube or nothing, from the principal
 * and from a sandbox qube: through the policy engine, and through the
 * qrexec router for the forms it carries; `@default` and `@dispvm`, which
 * name no qube, on system info with and without one outside qube; and, as
 * a control, two names that both exist nowhere. Timing
 * is measured, not asserted: |t| above 4.5 is counted as "paths over
 * threshold", never a failure; two targets of a pair that get different
 * answers are a failure.
 */
import { qubesdCall } from '../../src/shared/adminapi/client.js';
import type { SystemInfo } from '../../src/shared/policy/index.js';
import { normaliseCall } from '../../src/sim/qrexec/normalise.js';
import { OPERATIONS } from '../../src/shared/model/capabilities.js';
import type { Operation } from '../../src/shared/model/capabilities.js';
import type { Budget, Check, CheckReport, Failure, Figure } from '../check.js';
import { coverageFailures } from '../gaps.js';
import { InProcessHost, PRINCIPAL, prng } from '../malformed/host.js';
import type { ServiceSut } from '../malformed/host.js';
import { serviceCall, timingApplies, timingGaps } from './forms.js';
import { acrossProcesses, acrossT } from './across.js';
import { sampleAsync, tOf } from './measure.js';
import { REAL_ENGINE, loadPolicy } from './policy-paths.js';
import type { EngineModule, PolicyJob, PolicyPath } from './policy-paths.js';
import { CONTROL, SEATS, namedForms, unnamedForms } from './targets.js';

const NAME = 'timing';
export const THRESHOLD = 4.5;
/** Outside the umbrella (a full-tier tag, inside the reserved prefix), and a name of the same shape that exists nowhere. */
export const OUTSIDE = 'ai-outside';
export const ABSENT = 'ai-outsidx';

/** Evaluations of the engine per timed sample: one takes under a microsecond, and the clock reads in steps of about 10 ns. */
export const BATCH = 10;
/** Samples per class of each policy path in one process. */
export const SAMPLES = 1000;
/** Processes per unit of scale that measure the policy paths, each its own sample (verify/timing/across.ts). */
export const PROCESSES = 16;

/** Absent against outside (class 0 against class 1) for a call that takes milliseconds. */
async function measure(run: (qube: string) => Promise<unknown>, n: number, rand: ReturnType<typeof prng>, pair: readonly [string, string] = [ABSENT, OUTSIDE]): Promise<number> {
  return tOf(await sampleAsync(run, pair, n, rand, 10));
}

export interface TimingSut extends ServiceSut {
  /** Time only these paths (a test of one weakened service): a service, or a label without its `|t| `. */
  readonly paths?: readonly string[];
  /** The module the policy paths load the policy with (a weakened variant names its copy; default the real loadPolicyFromRoot). */
  readonly engine?: EngineModule;
  /** The model the check covers (default OPERATIONS; a test adds a fixture row). */
  readonly ops?: readonly Operation[];
}

export function makeTimingCheck(sut: TimingSut = {}): Check {
  return {
    name: NAME,
    summary: "Welch's t between an absent qube and one outside the umbrella, per path",
    async run(budget: Budget, seed: number): Promise<CheckReport> {
      const scale = Math.max(1, budget.scale);
      const ops = (sut.ops ?? OPERATIONS).filter(timingApplies);
      const gaps = timingGaps(sut.ops ?? OPERATIONS);
      if (gaps.length > 0) return { figures: [], failures: coverageFailures(NAME, gaps) };
      const rand = prng(seed);
      const figures: Figure[] = [];
      const h = await InProcessHost.start({ sut });
      let over = 0;
      let calls = 0;
      const failures: Failure[] = [];
      let residual = 0;
      const want = (path: string): boolean => !sut.paths || sut.paths.includes(path);
      try {
        const byService = (a: Operation, b: Operation): number => (a.service < b.service ? -1 : a.service > b.service ? 1 : 0);
        const perService = 75 * scale;
        for (const op of ops.filter((o) => o.target === 'dom0-service').sort(byService)) {
          const service = op.service;
          if (!want(service)) continue;
          const t = await measure(
            async (q) => {
              const [full, payload] = serviceCall(op, q) as [string, string];
              const r = await h.call(full, payload);
              if (r.status !== 126) throw new Error(`${full} was not refused: ${r.status}`);
            },
            perService,
            rand,
          );
          calls += 2 * perService;
          if (Math.abs(t) > THRESHOLD) over++;
          figures.push({ label: `|t| ${service}`, value: Math.abs(t).toFixed(2) });
        }

        // The calls the policy engine decides alone: tag-scoped, on the qube the call targets.
        const scoped = ops.filter((o) => o.target !== 'dom0-service').sort(byService).map((o) => o.service);
        const engine = sut.engine ?? REAL_ENGINE;
        const policy = await loadPolicy(engine, h.root);
        const reply = await qubesdCall(h.sim.internalSocketPath, { method: 'internal.GetSystemInfo', dest: 'dom0' });
        if (!reply.ok) throw new Error('internal.GetSystemInfo failed');
        const system = JSON.parse(reply.data.toString('utf8')) as SystemInfo;
        const differ = (label: string, what: string): void => {
          failures.push({ check: NAME, what: `${label}: ${what}`, reproduction: `--seed ${seed} --only ${NAME}` });
        };
        // Each policy path once, with whether it counts over the threshold (the control does not) and
        // whether it is reported. Every process times all of them whatever is reported: what a
        // process compiled for one path depends on the paths it ran before, so a row is read in the
        // same company under any filter.
        const paths: { path: PolicyPath; counted: boolean; wanted: boolean }[] = [];
        for (const service of scoped) {
          // Outside the umbrella: denied. An elevation tag without the umbrella still matches the tier
          // lines (the engine has no AND; docs/capabilities.md: install refuses it, doctor reports it).
          if (policy.evaluate({ service, argument: '', source: PRINCIPAL, target: OUTSIDE }, system).action !== 'deny') residual++;
          for (const q of ['vault']) {
            const r = policy.evaluate({ service, argument: '', source: PRINCIPAL, target: q }, system);
            if (r.action !== 'deny') {
              failures.push({
                check: NAME,
                what: `policy: ${service} from ${PRINCIPAL} to ${q} (outside the umbrella) is ${r.action}, not denied`,
                reproduction: `--seed ${seed} --only ${NAME}; qmcp policy eval: {"source":"${PRINCIPAL}","target":"${q}","service":"${service}","arg":""} on the attack fleet`,
              });
            }
          }
          // An outside qube with no qmcp tag, and a name of its shape that exists nowhere.
          paths.push({ path: { label: `policy ${service}`, service, source: PRINCIPAL, targets: ['vaulx', 'vault'] }, counted: true, wanted: want(service) });
        }
        // Every form of special target: the engine alone here, through the router below where it carries the form.
        const unnamed = unnamedForms(system);
        for (const [source, service] of SEATS) {
          const ask = (target: string, sys: SystemInfo = system): string => policy.evaluate({ service, argument: '', source, target }, sys).action;
          for (const { form, outside, absent } of namedForms(system)) {
            const label = `policy ${form} from ${source}`;
            const [a, b] = [ask(outside), ask(absent)];
            if (a !== b) differ(label, `${outside} answers ${a}, ${absent} answers ${b}`);
            paths.push({ path: { label, service, source, targets: [absent, outside] }, counted: true, wanted: want(label) });
          }
          // Not counted over the threshold: it tells how far |t| strays at this speed with nothing to find.
          const control = `policy name from ${source}, two absent names (control)`;
          paths.push({ path: { label: control, service, source, targets: CONTROL }, counted: false, wanted: want(control) });
          for (const { form, target, without } of unnamed) {
            const label = `policy ${form} from ${source} (one outside qube more)`;
            const [a, b] = [ask(target, system), ask(target, without)];
            if (a !== b) differ(label, `${target} answers ${a} with the qube, ${b} without`);
            paths.push({ path: { label, service, source, target }, counted: true, wanted: want(label) });
          }
        }
        if (paths.some((p) => p.wanted)) {
          const without = unnamed[0]?.without ?? system;
          const job: PolicyJob = { root: h.root, engine, system, without, paths: paths.map((p) => p.path), n: SAMPLES, batch: BATCH, warm: 1000, seed };
          const k = PROCESSES * scale;
          const readings = await acrossProcesses(job, k);
          calls += 2 * SAMPLES * BATCH * k * paths.length;
          for (const { path, counted } of paths.filter((p) => p.wanted)) {
            const diffs = (readings.get(path.label) ?? []).map((r) => r.diffNs);
            const t = acrossT(diffs);
            if (counted && Math.abs(t) > THRESHOLD) over++;
            figures.push({ label: `|t| ${path.label}`, value: Math.abs(t).toFixed(2) });
          }
        }

        const timed = (label: string, t: number, n: number): void => {
          calls += 2 * n;
          if (Math.abs(t) > THRESHOLD) over++;
          figures.push({ label: `|t| ${label}`, value: Math.abs(t).toFixed(2) });
        };
        // A router call takes milliseconds and jitters by as much: it shows differences of that size.
        // It keeps the first 63 bytes of a target (normalise.ts); a form cut short would reach it as
        // two absent names, so only the engine would time it.
        const perRouter = 20 * scale;
        const routed = namedForms(system).filter(({ outside, absent }) => [outside, absent].every((t) => normaliseCall(t, '').target === t));
        if (SEATS.some(([source]) => routed.some(({ form }) => want(`router ${form} from ${source}`)))) {
          await h.startQrexec();
          for (const [source, service] of SEATS) {
            const call = async (target: string): Promise<number> => (await h.qrexec(target, service, '', source)).status;
            for (const { form, outside, absent } of routed) {
              const label = `router ${form} from ${source}`;
              if (!want(label)) continue;
              const [a, b] = [await call(outside), await call(absent)];
              if (a !== b) differ(label, `${outside} exits ${a}, ${absent} exits ${b}`);
              timed(label, await measure(call, perRouter, rand, [absent, outside]), perRouter);
            }
          }
        }
      } finally {
        await h.done();
      }
      return {
        figures: [{ label: 'timed calls', value: String(calls) }, { label: `paths over threshold (|t| > ${THRESHOLD})`, value: String(over) },
          { label: 'tag-scoped allows to an elevation tag without the umbrella (documented residual)', value: String(residual) }, ...figures],
        failures,
      };
    },
  };
}

export const timingCheck = makeTimingCheck();
