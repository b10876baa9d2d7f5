/**
 * Malformed input (SPEC §4.15): every dom0 service in the service table,
 * fed grammar-aware near misses and generated noise, answers with the
 * uniform refusal and nothing else, logs a refusal and no intent, and
 * changes nothing (the whole simulated machine and every dom0 file compared
 * before and after each call). A few go through the real service process.
 * The simulated qubesd socket gets the wire grammar's near misses.
 */
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import fc from 'fast-check';
import { auditLogPath } from '../../src/dom0/audit/index.js';
import type { Budget, Check, CheckReport, Failure, Figure } from '../check.js';
import { malformedArbitrary, nearMisses } from './cases.js';
import type { MalformedCase } from './cases.js';
import { GRAMMARS, wellFormed } from './grammar.js';
import { InProcessHost, SERVICE_MAIN, filesDiffer, isRefused, prng, show, spawnService } from './host.js';
import type { CallResult, ServiceSut } from './host.js';
import { describe, meets, rawCall, socketCases } from './qubesd-socket.js';

const NAME = 'malformed';

export interface MalformedSut extends ServiceSut {
  /** Runs the service process for one call; default: the real service-main. */
  readonly serviceMain?: string;
  /** Attack only these services (a test of one weakened service); default: the whole table. */
  readonly services?: readonly string[];
}

/** The audit kinds appended since `from` bytes. */
function appendedKinds(path: string, from: number): string[] {
  const size = statSync(path).size;
  if (size <= from) return [];
  const buf = Buffer.alloc(size - from);
  const fd = openSync(path, 'r');
  try {
    readSync(fd, buf, 0, buf.length, from);
  } finally {
    closeSync(fd);
  }
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

/** Runs one case and says what, if anything, broke. */
async function attack(h: InProcessHost, service: string, c: MalformedCase): Promise<string | null> {
  const state = h.state();
  const files = h.dom0Files();
  const log = auditLogPath(h.root);
  const logSize = statSync(log).size;
  let r: CallResult;
  try {
    r = await h.call(c.argument === '' ? service : `${service}+${c.argument}`, c.payload);
  } catch (err) {
    return `the service threw: ${(err as Error).message}`;
  }
  if (!isRefused(r)) return `answered ${show(r).slice(0, 300)} instead of the uniform refusal`;
  if (h.state() !== state) return 'the simulated machine changed';
  const diff = filesDiffer(files, h.dom0Files());
  if (diff) return `a dom0 file changed: ${diff}`;
  const kinds = appendedKinds(log, logSize);
  if (kinds.length !== 1 || kinds[0] !== 'refusal') return `audit entries appended: ${JSON.stringify(kinds)} (want one refusal)`;
  return null;
}

export function makeMalformedCheck(sut: MalformedSut = {}): Check {
  return {
    name: NAME,
    summary: 'malformed arguments and payloads to every dom0 service and to qubesd',
    async run(budget: Budget, seed: number): Promise<CheckReport> {
      const scale = Math.max(1, budget.scale);
      const failures: Failure[] = [];
      const figures: Figure[] = [];
      const rand = prng(seed);
      const h = await InProcessHost.start({ sut });
      try {
        const services = [...h.table(h.writeDeps()).keys()].filter((s) => !sut.services || sut.services.includes(s)).sort();
        let generic = 0;
        let total = 0;
        for (const service of services) {
          const g = GRAMMARS[service];
          if (!g) generic++;
          const fail = (c: MalformedCase, what: string): void => {
            failures.push({ check: NAME, what: `${service} (${c.kind}): ${what}`, reproduction: repro(seed, scale, service, c) });
          };
          // Near misses of the grammar: a seeded sample, the same every run of a seed.
          const misses = g ? rand.shuffle(nearMisses(g)).slice(0, 60 * scale) : [];
          let count = 0;
          let failed = 0;
          for (const c of misses) {
            count++;
            const why = await attack(h, service, c);
            if (why && failed++ < 3) fail(c, why);
          }
          // Generated noise, shrunk by fast-check on failure.
          let last = '';
          const result = await fc.check(
            fc.asyncProperty(malformedArbitrary(g), async (c) => {
              fc.pre(!g || !wellFormed(g, c.argument, c.payload));
              count++;
              const why = await attack(h, service, c);
              if (why) last = why;
              return why === null;
            }),
            { seed: seed + services.indexOf(service), numRuns: 20 * scale, endOnFailure: false, maxSkipsPerRun: 10 },
          );
          if (result.failed && result.counterexample) {
            const [c] = result.counterexample;
            fail(c, `${last} (shrunk after ${result.numShrinks} steps)`);
          }
          // A few through the real service process: the wrapper must refuse as the runner does.
          const main = sut.serviceMain ?? SERVICE_MAIN;
          for (let i = 0; i < scale; i++) {
            const c = misses.filter((m) => !m.argument.includes('\0'))[i];
            if (!c) break;
            count++;
            const r = await spawnService(h, c.argument === '' ? service : `${service}+${c.argument}`, c.payload, main).done;
            if (!isRefused(r)) fail(c, `the service process answered ${show(r).slice(0, 300)}`);
          }
          total += count;
          figures.push({ label: `malformed inputs: ${service}`, value: String(count) });
        }
        figures.push({ label: 'services fuzzed', value: String(services.length) });
        figures.push({ label: 'services with the generic grammar only', value: String(generic) });
        figures.push({ label: 'malformed inputs, all services', value: String(total) });

        // A well-formed call of each read-only service is answered: the examples are not refused for their own sake.
        for (const service of ['qmcp.List', 'qmcp.Info', 'qmcp.PoolFigures']) {
          const g = GRAMMARS[service];
          if (!g || !services.includes(service)) continue;
          const r = await h.call(g.example ? `${service}+${g.example}` : service, '');
          if (r.status !== 0) failures.push({ check: NAME, what: `control: well-formed ${service} was not answered (${show(r)})`, reproduction: `--seed ${seed} --only ${NAME}` });
        }

        // The qubesd socket.
        const before = h.state();
        let socketCount = 0;
        const cases = socketCases();
        for (let i = 0; i < 20 * scale; i++) {
          const bytes = Buffer.alloc(1 + rand.int(200));
          for (let j = 0; j < bytes.length; j++) bytes[j] = rand.int(256);
          cases.push({ kind: 'random bytes', request: bytes, expect: 'no bytes or exception' });
        }
        for (const c of cases) {
          socketCount++;
          const reply = await rawCall(h.sim.socketPath, c.request);
          if (!meets(reply, c.expect)) {
            failures.push({
              check: NAME,
              what: `qubesd ${c.kind}: replied ${describe(reply)}, want ${typeof c.expect === 'string' ? c.expect : c.expect.exception}`,
              reproduction: `--seed ${seed} --only ${NAME}; request (base64) ${c.request.toString('base64').slice(0, 400)}`,
            });
          }
        }
        if (h.state() !== before) failures.push({ check: NAME, what: 'qubesd: malformed requests changed the machine', reproduction: `--seed ${seed} --only ${NAME}` });
        const alive = await rawCall(h.sim.socketPath, Buffer.from('admin.vm.List dom0 name dom0\0', 'latin1'));
        if (!meets(alive, 'ok')) failures.push({ check: NAME, what: 'qubesd stopped serving after malformed requests', reproduction: `--seed ${seed} --only ${NAME}` });
        figures.push({ label: 'malformed requests: qubesd socket', value: String(socketCount) });
      } finally {
        await h.done();
      }
      return { figures, failures };
    },
  };
}

export const malformedCheck = makeMalformedCheck();
