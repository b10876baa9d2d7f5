/**
 * Malformed input (SPEC §4.15): every operation of the capability model.
 * Each dom0 service, fed grammar-aware near misses and generated noise,
 * answers with the uniform refusal and nothing else, logs a refusal and no
 * intent, and changes nothing (the whole simulated machine and every dom0
 * file compared before and after each call); a few go through the real
 * service process. Each operation the policy decides alone is called
 * through qrexec toward near misses of a target, and is refused before any
 * qmcp code runs; the in-qube services refuse near misses of their own
 * requests and run nothing (in-qube.ts). An operation without a grammar fails the check. The
 * simulated qubesd socket gets the wire grammar's near misses.
 */
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import fc from 'fast-check';
import { auditLogPath } from '../../src/dom0/audit/index.js';
import { chainFiles, rotatedFiles } from '../../src/dom0/audit/files.js';
import { OPERATIONS, operation } from '../../src/shared/model/capabilities.js';
import type { Operation } from '../../src/shared/model/capabilities.js';
import type { Budget, Check, CheckReport, Failure, Figure } from '../check.js';
import { bounded, budgetCount } from '../check.js';
import { coverageFailures } from '../gaps.js';
import { malformedArbitrary, nearMisses, targetArbitrary, targetMisses } from './cases.js';
import type { MalformedCase, TargetCase } from './cases.js';
import { GRAMMARS, TARGET_GRAMMARS, malformedGaps, wellFormed, wellFormedTarget } from './grammar.js';
import type { Grammar, TargetGrammar } from './grammar.js';
import { BASE_SETTINGS, InProcessHost, SERVICE_MAIN, filesDiffer, inputError, isRefused, prng, sameState, show, spawnService, startResidentProcess } from './host.js';
import type { CallResult, ServiceSut, SettingsFile } from './host.js';
import { attackInQube, IN_QUBE_SERVICES } from './in-qube.js';
import { describe, meets, rawCall, socketCases } from './qubesd-socket.js';

const NAME = 'malformed';
/** Hosts attacked at once, one operation each at a time. */
const LANES = 4;
/** The full budget's malformed inputs per dom0 service and unit of scale: ten thousand at the default scale 10. */
const PER_SERVICE = 1000;

export interface MalformedSut extends ServiceSut {
  /** Runs the service process for one call; default: the real service-main. */
  readonly serviceMain?: string;
  /** Attack only these operations, by id (a test of one weakened service or policy line); default: every one. */
  readonly operations?: readonly string[];
  /** A policy file read before qmcp's own (a variant with a leaky line). */
  readonly extraPolicy?: string;
  /** The model the check covers (default OPERATIONS; a test adds a fixture row). */
  readonly ops?: readonly Operation[];
  /** The directory of the in-qube services (default src/qube; a test gives a weakened one). */
  readonly qubeServices?: string;
}

/**
 * The audit log rotated every 64 KiB a unit of scale, so that every run (a
 * test's too) reads appended entries across rotations, and a long run's
 * log directory, which every append lists, holds some forty files a host
 * rather than hundreds.
 */
const rotating = (scale: number): SettingsFile => ({ ...BASE_SETTINGS, auditRetention: { fileBytes: 64 * 1024 * scale, keepBytes: null, keepDays: null } });

/** Where the audit chain ended: how many files had been rotated out, and the live file's size. */
interface LogMark {
  readonly rotated: number;
  readonly size: number;
}

async function logMark(path: string): Promise<LogMark> {
  return { rotated: (await rotatedFiles(path)).length, size: statSync(path).size };
}

function readFrom(path: string, from: number): Buffer {
  const size = statSync(path).size;
  if (size <= from) return Buffer.alloc(0);
  const buf = Buffer.alloc(size - from);
  const fd = openSync(path, 'r');
  try {
    readSync(fd, buf, 0, buf.length, from);
  } finally {
    closeSync(fd);
  }
  return buf;
}

/** The audit kinds appended since `mark`, across a rotation: the live file of the mark then goes on as the next `.N`. */
async function appendedKinds(path: string, mark: LogMark): Promise<string[]> {
  // the files written since the mark: the one that was live then (now `.N`, or still live) and every later one
  const since = (await chainFiles(path)).slice(mark.rotated);
  const buf = Buffer.concat(since.map((f, i) => readFrom(f.path, i === 0 ? mark.size : 0)));
  return buf
    .toString('utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      try {
        return String((JSON.parse(l) as { kind?: unknown }).kind);
      } catch {
        return 'unparsable';
      }
    });
}

function repro(seed: number, scale: number, service: string, c: MalformedCase): string {
  return `--seed ${seed} --scale ${scale} --only ${NAME}; ${service}+${JSON.stringify(c.argument)} payload (base64) ${c.payload.toString('base64').slice(0, 400)}`;
}

/**
 * What a host looked like after an attack that changed nothing: the next
 * attack on it starts from there rather than reading it again, since a
 * host serves one call at a time and nothing else runs on it between two
 * attacks (whatever else does forgets it first). A change between two
 * attacks is still seen, by the later one.
 */
const settled = new WeakMap<InProcessHost, { readonly state: string; readonly files: ReadonlyMap<string, string> }>();

/** Runs one call and says what, if anything, broke: it must be refused (or answered with an input error), change nothing, and append exactly `audit`. */
async function attack(h: InProcessHost, call: () => Promise<CallResult>, audit: readonly string[]): Promise<string | null> {
  const known = settled.get(h);
  settled.delete(h);
  const state = known?.state ?? h.quickState();
  const files = known?.files ?? (await h.dom0FilesNow());
  const log = auditLogPath(h.root);
  const mark = await logMark(log);
  let r: CallResult;
  try {
    r = await call();
  } catch (err) {
    return `the service threw: ${(err as Error).message}`;
  }
  if (!isRefused(r) && !inputError(r)) return `answered ${show(r).slice(0, 300)} instead of the uniform refusal`;
  const after = h.quickState();
  if (!sameState(after, state)) return 'the simulated machine changed';
  const afterFiles = await h.dom0FilesNow();
  const diff = filesDiffer(files, afterFiles);
  if (diff) return `a dom0 file changed: ${diff}`;
  const kinds = await appendedKinds(log, mark);
  if (JSON.stringify(kinds) !== JSON.stringify(audit)) return `audit entries appended: ${JSON.stringify(kinds)} (want ${JSON.stringify(audit)})`;
  settled.set(h, { state: after, files: afterFiles });
  return null;
}

/** A dom0 service's malformed call: the runner refuses it with one refusal entry. */
const serviceAttack = (h: InProcessHost, service: string, c: MalformedCase): Promise<string | null> =>
  attack(h, () => h.call(c.argument === '' ? service : `${service}+${c.argument}`, c.payload), ['refusal']);

/** A call of what the policy decides, toward a malformed target: qrexec refuses it before any qmcp code runs. */
const targetAttack = (h: InProcessHost, op: Operation, g: TargetGrammar, c: TargetCase): Promise<string | null> =>
  attack(h, () => h.qrexec(c.target, g.argument === '' ? op.service : `${op.service}+${g.argument}`, g.payload), []);

/** One run of the check: the host, its budget and seed, and what it found so far. */
interface Run {
  readonly h: InProcessHost;
  readonly scale: number;
  readonly seed: number;
  readonly sut: MalformedSut;
  readonly figures: Figure[];
  readonly failures: Failure[];
  total: number;
}

/**
 * The first `60 × scale` near misses (shuffled by the seed: the same
 * sample every run of a seed), then generated noise that fast-check
 * shrinks on failure, `20 × scale` or up to `budget` cases in all; returns
 * how many cases ran.
 */
async function fuzz<C>(
  run: Run,
  misses: readonly C[],
  noise: fc.Arbitrary<C>,
  malformed: (c: C) => boolean,
  attackOne: (c: C) => Promise<string | null>,
  fail: (c: C, what: string) => void,
  fcSeed: number,
  budget: number,
): Promise<number> {
  let count = 0;
  let failed = 0;
  settled.delete(run.h);
  const near = misses.slice(0, 60 * run.scale);
  for (const c of near) {
    count++;
    const why = await attackOne(c);
    if (why && failed++ < 3) fail(c, why);
  }
  let last = '';
  const result = await fc.check(
    fc.asyncProperty(noise, async (c) => {
      fc.pre(malformed(c));
      count++;
      const why = await attackOne(c);
      if (why) last = why;
      return why === null;
    }),
    { seed: fcSeed, numRuns: Math.max(20 * run.scale, budget - near.length), endOnFailure: false, maxSkipsPerRun: 10 },
  );
  if (result.failed && result.counterexample) {
    const [c] = result.counterexample;
    fail(c, `${last} (shrunk after ${result.numShrinks} steps)`);
  }
  return count;
}

/** A dom0 service: near misses of its grammar, generated noise, and a few through the real service process. */
async function fuzzService(run: Run, op: Operation, g: Grammar, misses: readonly MalformedCase[], fcSeed: number): Promise<void> {
  const { h, scale, seed, sut } = run;
  const service = op.service;
  const fail = (c: MalformedCase, what: string): void => {
    run.failures.push({ check: NAME, what: `${service} (${c.kind}): ${what}`, reproduction: repro(seed, scale, service, c) });
  };
  let count = await fuzz(run, misses, malformedArbitrary(g), (c) => !wellFormed(g, c.argument, c.payload), (c) => serviceAttack(h, service, c), fail, fcSeed, budgetCount(scale, 0, PER_SERVICE) - scale);
  // A few through the real service process (the resident one in resident mode): it must refuse as the runner does.
  const main = sut.serviceMain ?? SERVICE_MAIN;
  settled.delete(h);
  const resident = h.serviceMode === 'resident' ? await startResidentProcess(h, service) : null;
  try {
    for (let i = 0; i < scale; i++) {
      const c = misses.filter((m) => !m.argument.includes('\0'))[i];
      if (!c) break;
      count++;
      const full = c.argument === '' ? service : `${service}+${c.argument}`;
      const r = resident ? await resident.call(full, c.payload) : await spawnService(h, full, c.payload, main).done;
      if (!isRefused(r) && !inputError(r)) fail(c, `the service process answered ${show(r).slice(0, 300)}`);
    }
  } finally {
    await resident?.stop();
  }
  run.total += count;
  run.figures.push({ label: `malformed inputs: ${service}`, value: String(count) });
}

/** An operation the policy decides: near misses of a target and generated targets, through qrexec. */
async function fuzzTarget(run: Run, op: Operation, g: TargetGrammar, misses: readonly TargetCase[], fcSeed: number): Promise<void> {
  const fail = (c: TargetCase, what: string): void => {
    run.failures.push({ check: NAME, what: `${op.service} (${c.kind}): ${what}`, reproduction: `--seed ${run.seed} --scale ${run.scale} --only ${NAME}; ${op.service} toward ${JSON.stringify(c.target)}` });
  };
  const count = await fuzz(run, misses, targetArbitrary(), (c) => !wellFormedTarget(c.target), (c) => targetAttack(run.h, op, g, c), fail, fcSeed, 0);
  run.total += count;
  run.figures.push({ label: `malformed targets: ${op.service}`, value: String(count) });
}

export function makeMalformedCheck(sut: MalformedSut = {}): Check {
  return {
    name: NAME,
    summary: 'malformed arguments, payloads and targets of every operation, and malformed requests to qubesd',
    async run(budget: Budget, seed: number): Promise<CheckReport> {
      const scale = Math.max(1, budget.scale);
      const ops = sut.ops ?? OPERATIONS;
      const gaps = malformedGaps(ops);
      if (gaps.length > 0) return { figures: [], failures: coverageFailures(NAME, gaps) };
      const figures: Figure[] = [];
      const failures: Failure[] = [];
      const rand = prng(seed);
      const chosen = ops.filter((op) => !sut.operations || sut.operations.includes(op.id)).sort((a, b) => (a.service < b.service ? -1 : a.service > b.service ? 1 : 0));
      const services = chosen.filter((op) => op.target === 'dom0-service');
      const decided = chosen.filter((op) => op.target !== 'dom0-service');
      // the near misses' samples drawn in the operations' order, whichever lane then attacks with them
      const misses = chosen.map((op) => {
        const g = GRAMMARS[op.id];
        return g ? rand.shuffle(nearMisses(g)) : TARGET_GRAMMARS[op.id] ? rand.shuffle(targetMisses()) : [];
      });
      // a host per lane: an attack compares its whole machine before and after, so one host serves one call at a time
      const hosts: InProcessHost[] = [];
      const host = async (): Promise<InProcessHost> => {
        const h = await InProcessHost.start({ sut, settings: rotating(scale) });
        hosts.push(h);
        if (sut.extraPolicy !== undefined) h.addPolicy('10-weakened.policy', sut.extraPolicy);
        if (decided.length > 0) await h.startQrexec();
        return h;
      };
      const run: Run = { h: await host(), scale, seed, sut, figures, failures, total: 0 };
      try {
        const lanes = await Promise.all(Array.from({ length: Math.min(LANES, chosen.length) - 1 }, host));
        const free = [run.h, ...lanes];
        // each operation's figures and failures, put in the operations' order once all are done
        const parts = await bounded(chosen.length, free.length, async (i) => {
          const op = chosen[i] as Operation;
          const h = free.pop() as InProcessHost;
          const part: Run = { h, scale, seed, sut, figures: [], failures: [], total: 0 };
          try {
            const g = GRAMMARS[op.id];
            const target = TARGET_GRAMMARS[op.id];
            if (g) await fuzzService(part, op, g, misses[i] as MalformedCase[], seed + i);
            else if (target) await fuzzTarget(part, op, target, misses[i] as TargetCase[], seed + i);
          } finally {
            free.push(h);
          }
          return part;
        });
        for (const part of parts) {
          run.total += part.total;
          figures.push(...part.figures);
          failures.push(...part.failures);
        }
        // The in-qube services' own checks.
        for (const op of decided.filter((o) => IN_QUBE_SERVICES.includes(o.service))) {
          const { count, findings } = await attackInQube(op.service, sut.qubeServices);
          run.total += count;
          figures.push({ label: `malformed requests in the qube: ${op.service}`, value: String(count) });
          for (const f of findings) failures.push({ check: NAME, what: `${f.service} in the qube (${f.what}): ${f.problem}`, reproduction: `--seed ${seed} --only ${NAME}; ${f.service} request with ${f.what}` });
        }
        const perService = parts.filter((p) => p.figures.some((f) => f.label.startsWith('malformed inputs: '))).map((p) => p.total);
        if (perService.length > 0) figures.push({ label: 'malformed inputs per dom0 service, fewest', value: String(Math.min(...perService)) });
        figures.push({ label: 'services fuzzed', value: String(services.length) });
        figures.push({ label: 'operations the policy decides, fuzzed by target', value: String(decided.length) });
        figures.push({ label: 'malformed inputs, all operations', value: String(run.total) });

        // A well-formed call of each read-only service that answers at once is answered: the examples are not refused for their own sake.
        // A plan's status is there once a plan is: the (well-formed) example plan is submitted first.
        if (services.some((o) => GRAMMARS[o.id]?.argument === 'plan')) await run.h.call(operation('plan.submit').service, JSON.stringify(GRAMMARS['plan.submit']?.payload?.examples[0]));
        for (const op of services.filter((o) => o.readOnly && GRAMMARS[o.id]?.argument !== 'seconds')) {
          const g = GRAMMARS[op.id] as Grammar;
          const r = await run.h.call(g.example ? `${op.service}+${g.example}` : op.service, '');
          if (r.status !== 0) failures.push({ check: NAME, what: `control: well-formed ${op.service} was not answered (${show(r)})`, reproduction: `--seed ${seed} --only ${NAME}` });
        }

        // The qubesd socket.
        const before = run.h.state();
        let socketCount = 0;
        const cases = socketCases();
        for (let i = 0; i < 20 * scale; i++) {
          const bytes = Buffer.alloc(1 + rand.int(200));
          for (let j = 0; j < bytes.length; j++) bytes[j] = rand.int(256);
          cases.push({ kind: 'random bytes', request: bytes, expect: 'no bytes or exception' });
        }
        for (const c of cases) {
          socketCount++;
          const reply = await rawCall(run.h.sim.socketPath, c.request);
          if (!meets(reply, c.expect)) {
            failures.push({
              check: NAME,
              what: `qubesd ${c.kind}: replied ${describe(reply)}, want ${typeof c.expect === 'string' ? c.expect : c.expect.exception}`,
              reproduction: `--seed ${seed} --only ${NAME}; request (base64) ${c.request.toString('base64').slice(0, 400)}`,
            });
          }
        }
        if (run.h.state() !== before) failures.push({ check: NAME, what: 'qubesd: malformed requests changed the machine', reproduction: `--seed ${seed} --only ${NAME}` });
        const alive = await rawCall(run.h.sim.socketPath, Buffer.from('admin.vm.List dom0 name dom0\0', 'latin1'));
        if (!meets(alive, 'ok')) failures.push({ check: NAME, what: 'qubesd stopped serving after malformed requests', reproduction: `--seed ${seed} --only ${NAME}` });
        figures.push({ label: 'malformed requests: qubesd socket', value: String(socketCount) });
      } finally {
        await Promise.all(hosts.map((h) => h.done()));
      }
      return { figures, failures };
    },
  };
}

export const malformedCheck = makeMalformedCheck();
