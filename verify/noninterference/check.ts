/**
 * Noninterference (SPEC §4.1): pairs of simulated machines that differ only
 * outside the agent's world (extra, deleted and changed qubes, names inside
 * the reserved prefix, operator tags, properties, features, running and
 * paused qubes, devices on outside backends) are driven with the same
 * generated calls: raw qrexec from the principal and from inside sandbox
 * qubes, naming visible, outside, guessed and special targets (`@adminvm`,
 * `dom0`, `@default`, `@dispvm`, `@dispvm:NAME`, `uuid:`). Every reply's
 * bytes and exit status must be identical, and so must an event window
 * while the operator works outside, the resource notifications live MCP
 * sessions get meanwhile, the MCP tool list and the MCP results.
 * In every other pair, machine B's operator also works outside while the
 * raw calls run (creating, tagging, starting, stopping and removing qubes),
 * and B must still answer as the quiet A does.
 * Every other plain pair has two more principals listed before the agent's
 * (docs/principals.md), with worlds of their own that the machines' edits
 * add to and B's busy operator tags qubes into and out of: the agent's
 * answers must not tell another principal's world from the outside.
 * Then pairs with the action gate on (the model's defaults, or every
 * operation that can ask asking), each machine's requests and dialogs
 * answered by a seeded answerer: every call must also make the operator
 * answer the same questions on both machines (so a hidden qube never
 * makes a request), and the machines as many in all.
 * A difference is shrunk (fewer calls, fewer edits) and reported with both
 * machines.
 *
 * Accepted residuals kept out of the generated machines, each in
 * docs/threat-model.md: an outside qube holding a name a create asks for;
 * an outside qube depending on an umbrella qube; an outside qube carrying
 * an elevation tag without the umbrella (doctor reports it); timing, which
 * the timing check measures; what a qube reads about itself (its IP).
 */
import { OPERATIONS } from '../../src/shared/model/capabilities.js';
import type { Operation } from '../../src/shared/model/capabilities.js';
import type { Budget, Check, CheckReport, Failure, Figure } from '../check.js';
import { bounded, budgetCount } from '../check.js';
import { PRINCIPAL, prng } from '../malformed/host.js';
import type { Call, Observation } from './calls.js';
import { coverageFailures } from '../gaps.js';
import { asExecutable, gatePrelude, generateSequence, namesOf, namesOutside, noninterferenceGaps, rawCall } from './calls.js';
import type { Edit, Machine, MachineVariant, PairSettings } from './machines.js';
import { OTHER_WORLD_ON_B, RUNNING_ON_A, generateEdits, startMachine, stopMachine } from './machines.js';
import { busyOperator, type BusyOperator } from './busy.js';
import { answeredCode, PROBES, probeGaps, probesFor } from './actionable.js';
import { WINDOW_SECONDS, eventWindow, mcpCalls, mcpClient, resourceReads, windowNotifications } from './observe.js';
import { liveSessions, type LiveSessions, type ServerFactory } from './notifications.js';

const NAME = 'noninterference';
/** Pairs run at once: one pair keeps under half a core busy (it waits on windows, starts, asks), so six fill two. */
const PAIR_LANES = 6;

export type CallFn = (m: Machine, c: Call) => Promise<Observation>;

/** What a weakened variant may substitute; `extraPolicy` and `weakened` are installed into both machines. */
export interface NoninterferenceSut extends MachineVariant {
  /** Wraps the raw call (a variant that answers one machine's outside names differently). */
  readonly call?: (m: Machine, c: Call, real: CallFn) => Promise<Observation>;
  /** The principal's calls only, of these operations (a test of one weakened service); default: every kind of call. */
  readonly operations?: readonly string[];
  /** The model the check covers (default OPERATIONS; a test adds a fixture row). */
  readonly ops?: readonly Operation[];
  /** The MCP server of the 2025-11-25 session subscribed during the event windows (a weakened feed). */
  readonly server?: ServerFactory;
  /** Skip the event windows and MCP comparisons (a test of the raw level only). */
  readonly rawOnly?: boolean;
  /** Fresh pairs shrinking may start (default 6 + 4 × scale). */
  readonly shrinkRuns?: number;
  /** Only the pairs whose operator is busy during the calls (a test of that dimension only). */
  readonly busyOnly?: boolean;
  /** Only the pairs with the gate on (a test of a weakened gate). */
  readonly gateOnly?: boolean;
  /** Only the pairs of these indexes (a test of what one pair's edits hold). */
  readonly pairs?: readonly number[];
  /** Event window lengths tried in turn (default WINDOW_SECONDS; a feed late on one machine is late at any length). */
  readonly windows?: readonly number[];
}

interface Pair {
  readonly index: number;
  /** Machine B's operator works outside while the raw calls run. */
  readonly busy: boolean;
  readonly settings: PairSettings;
  readonly a: readonly Edit[];
  readonly b: readonly Edit[];
}

interface Difference {
  readonly index: number;
  readonly call: Call;
  readonly a: Observation;
  readonly b: Observation;
}

interface Tally {
  /** The operations of the model the principal's calls made. */
  operations: Set<string>;
  pairs: number;
  calls: number;
  seats: number;
  special: number;
  outsideNamed: number;
  edits: number;
  busyCalls: number;
  operatorActions: number;
  windows: number;
  /** Event windows a loaded machine made late, tried again longer. */
  lateWindows: number;
  /** Pairs that tried event windows, and for each whose every window was late, which side was. */
  windowPairs: number;
  uncompared: string[];
  /** Resource notifications live sessions were sent, compared. */
  notified: number;
  mcp: number;
  shrinkRuns: number;
  gatePairs: number;
  requests: number;
  dialogs: number;
  plans: number;
  allowed: number;
  /** Pairs whose machines hold other principals' worlds, and the calls naming a qube of one. */
  othersPairs: number;
  otherWorldEdits: number;
  otherWorldNamed: number;
  /** The actionable codes the probes reached, on both machines alike. */
  codes: Set<string>;
  /** Probes that ended otherwise than in their code: the path is no longer exercised. */
  drifted: string[];
}

/** A job's id and start time are the qube's own choice and clock on each machine: nothing else of a job may differ. */
export function normaliseJobs(stdout: string): string {
  return stdout.replace(/^job [0-9a-f]{12}$/m, 'job -').replace(/^[0-9a-f]{12} ([01]) (-|[0-9]+) [0-9]+ /gm, '- $1 $2 - ');
}

/** When the agent's own remove made a tombstone is each machine's clock at that call; which tombstones, and all else of them, may not differ. */
export function normaliseRemovalTimes(stdout: string): string {
  // also as the MCP result carries it (removed_at), and inside a JSON text holding that JSON
  return stdout.replace(/(\\?"removed(?:_at)?\\?":\\?")\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z/g, '$1-');
}

/** A sink push lands under a fresh directory, named by the clock and a random suffix on each machine: whether it landed may not differ. */
export function normalisePushes(stdout: string): string {
  return stdout.replace(/^push \d{8}T\d{6}Z\.[0-9a-f]{16}$/gm, 'push -');
}

/**
 * An in-qube command that outlasts a second has its reply's first header
 * lines `beat`, one a second: how long it ran (timing, the accepted
 * residual), not what it did.
 */
export function normaliseBeats(stdout: string): string {
  return stdout.replace(/^(qmcp 1\n)(?:beat\n)+/, '$1');
}

/**
 * A plan's status carries each step's answer in base64: the masks above
 * apply inside it (a push step's fresh directory), and all else of it is
 * compared as it was.
 */
export function normalisePlanOutputs(stdout: string, inner: (answer: string) => string): string {
  return stdout.replace(/("output":")([A-Za-z0-9+/]*={0,2})"/g, (_, key: string, b64: string) => `${key}${Buffer.from(inner(Buffer.from(b64, 'base64').toString('latin1')), 'latin1').toString('base64')}"`);
}

const masked = (stdout: string): string => normaliseBeats(normalisePushes(normaliseRemovalTimes(normaliseJobs(stdout))));

/** What of a call's stdout the two machines must agree on. */
export const comparable = (stdout: string): string => normalisePlanOutputs(masked(stdout), masked);

const same = (x: Observation, y: Observation): boolean =>
  x.status === y.status && comparable(x.stdout) === comparable(y.stdout) && x.stderr === y.stderr && x.gate === y.gate;

/**
 * A call on a machine with the gate on: what it made the operator answer
 * is part of what is compared, and so are the plans the operator answers
 * (and runs) once it returned, before the next call. The newlines a
 * waiting dom0 service writes before its answer say only that the call
 * waited (which the gate field says) and how long (timing, not compared):
 * they are dropped.
 */
async function gatedCall(m: Machine, c: Call, call: CallFn): Promise<Observation> {
  const answerer = m.answerer;
  if (!answerer) return call(m, c);
  const from = answerer.answered.length;
  const o = await answerer.during(call(m, c));
  await answerer.settlePlans();
  const gate = answerer.answered
    .slice(from)
    .map((a) => `${a.kind} ${a.what} ${a.decision}`)
    .join('; ');
  return { ...o, stdout: gate === '' ? o.stdout : o.stdout.replace(/^\n+/, ''), gate };
}

/** Whether the two machines' operators answered alike in all, and their answerers worked; a failure's text if not. */
function gateDifference(a: Machine, b: Machine): string | null {
  for (const m of [a, b]) {
    if (m.answerer && m.answerer.errors.length > 0) return `machine ${m.label}'s answerer failed: ${m.answerer.errors.join('; ')}`;
  }
  const count = (m: Machine): string => (['request', 'ask', 'plan'] as const).map((k) => `${m.answerer?.answered.filter((x) => x.kind === k).length ?? 0} ${k}s`).join(', ');
  if (count(a) !== count(b)) return `the operators answered differently many questions: A ${count(a)}; B ${count(b)}`;
  return null;
}
const show = (o: Observation): string => JSON.stringify(o);

async function withPair<T>(p: Pair, seed: number, sut: NoninterferenceSut, body: (a: Machine, b: Machine) => Promise<T>): Promise<T> {
  const [a, b] = await Promise.all([startMachine('A', p.a, seed, p.settings, sut), startMachine('B', p.b, seed, p.settings, sut)]);
  try {
    return await body(a, b);
  } finally {
    await Promise.all([stopMachine(a), stopMachine(b)]);
  }
}

/**
 * Runs the calls on both machines, one at a time on each, and returns the
 * first difference; with `busy`, B's operator works outside meanwhile.
 */
async function firstDifference(a: Machine, b: Machine, calls: readonly Call[], call: CallFn, busy: boolean, tally?: Tally, differing: readonly string[] = [], probes?: ReadonlyMap<Call, string | null>): Promise<Difference | null> {
  const operator = busy ? busyOperator(b, b.otherWorlds.length > 0 ? 'oc-managed' : undefined) : null;
  try {
    return await compare(a, b, calls, call, operator, tally, differing, probes);
  } finally {
    const actions = (await operator?.stop()) ?? 0;
    if (tally) tally.operatorActions += actions;
  }
}

async function compare(a: Machine, b: Machine, calls: readonly Call[], call: CallFn, operator: BusyOperator | null, tally?: Tally, differing: readonly string[] = [], probes?: ReadonlyMap<Call, string | null>): Promise<Difference | null> {
  const busy = operator !== null;
  for (const [index, c] of calls.entries()) {
    operator?.callStarts();
    const [oa, ob] = await Promise.all([call(a, c), call(b, c)]);
    const expected = probes?.get(c);
    if (tally && expected !== undefined) {
      // a probe reads the answer as the executable gives it: the resident process's trailer is its status
      const answer = asExecutable(c, oa);
      const got = answeredCode(answer);
      if (got !== expected || (expected === null && answer.status !== 0)) tally.drifted.push(`${JSON.stringify(c)} answered ${JSON.stringify(oa)}, not ${expected ?? 'success'}`);
      else if (expected !== null) tally.codes.add(expected);
    }
    if (tally) {
      if (c.operation !== undefined) tally.operations.add(c.operation);
      if (busy) tally.busyCalls++;
      tally.calls++;
      if (c.seat !== PRINCIPAL) tally.seats++;
      if (c.target !== '@adminvm' && /^(@|dom0$|uuid:)/.test(c.target)) tally.special++;
      if (namesOutside(c, differing)) tally.outsideNamed++;
      if (namesOutside(c, [...new Set([...a.otherWorlds, ...b.otherWorlds])])) tally.otherWorldNamed++;
    }
    if (!same(oa, ob)) return { index, call: c, a: oa, b: ob };
  }
  return null;
}

/**
 * Fewer calls, then fewer edits, while the machines still differ; each try
 * is a fresh pair. Bounded by `runs`.
 */
async function shrink(p: Pair, seed: number, sut: NoninterferenceSut, call: CallFn, calls: Call[], diff: Difference, runs: number, tally: Tally): Promise<{ pair: Pair; calls: Call[]; diff: Difference }> {
  let best = { pair: p, calls: calls.slice(0, diff.index + 1), diff };
  const attempt = async (pair: Pair, cs: Call[]): Promise<boolean> => {
    if (runs-- <= 0 || cs.length === 0) return false;
    tally.shrinkRuns++;
    // an edit left without the one it depended on (a start of a qube no longer added) makes no machine: not smaller
    const d = await withPair(pair, seed, sut, (a, b) => firstDifference(a, b, cs, call, pair.busy)).catch(() => null);
    if (!d) return false;
    best = { pair, calls: cs.slice(0, d.index + 1), diff: d };
    return true;
  };
  for (let size = Math.max(1, Math.floor(best.calls.length / 2)); size >= 1 && runs > 0; size = size === 1 ? 0 : Math.max(1, Math.floor(size / 2))) {
    for (let start = 0; start < best.calls.length - 1 && runs > 0; ) {
      const cs = [...best.calls.slice(0, start), ...best.calls.slice(start + size)];
      if (!(await attempt(best.pair, cs))) start += size;
    }
  }
  if (best.pair.busy && runs > 0 && (await attempt({ ...best.pair, busy: false }, best.calls))) {
    // differs on a quiet machine too: the operator's work was not needed
  }
  for (const side of ['a', 'b'] as const) {
    for (let i = 0; i < best.pair[side].length && runs > 0; ) {
      const edits = best.pair[side].filter((_, j) => j !== i);
      if (!(await attempt({ ...best.pair, [side]: edits }, best.calls))) i++;
    }
  }
  return best;
}

function describePair(p: Pair): string {
  const gate = p.settings.gate ? `, gate ${p.settings.gate.asks} answered with seed ${p.settings.gate.seed}` : '';
  return `pair ${p.index} (mode ${p.settings.mode}, birth ceiling ${p.settings.birthCeiling}${p.settings.unset ? ', budget, egress and limits unset, lease bounded' : ''}${p.settings.others ? ', two other principals' : ''}${gate}${p.busy ? ', B\'s operator busy outside during the calls' : ''}); machine A edits ${JSON.stringify(p.a)}; machine B edits ${JSON.stringify(p.b)}`;
}

/** After the raw calls: the gate's totals, an event window, the MCP tool list and results; the first difference. */
async function observeMore(a: Machine, b: Machine, call: CallFn, tally: Tally, rawOnly: boolean, server?: ServerFactory, windows: readonly number[] = WINDOW_SECONDS): Promise<{ kind: 'other'; what: string } | null> {
  const other = (what: string): { kind: 'other'; what: string } => ({ kind: 'other', what });
  const gate = gateDifference(a, b);
  if (gate) return other(gate);
  if (rawOnly) return null;

  const names = [...new Set([...b.outside, ...a.outside])];
  tally.windowPairs++;
  const late = { A: 0, B: 0, sessions: 0 };
  let compared = false;
  for (const seconds of windows) {
    // live sessions beside the window, but with the gate on, where each of their windows would ask the operator
    const live: (LiveSessions | null)[] = a.answerer ? [null, null] : await Promise.all([liveSessions(a, names, seconds, server), liveSessions(b, names, seconds, server)]);
    let told: Awaited<ReturnType<LiveSessions['settle']>>[] = [];
    try {
      const [wa, wb] = await Promise.all([eventWindow(a, call, seconds), eventWindow(b, call, seconds)]);
      told = await Promise.all([wa, wb].flatMap((w, i) => live[i]?.settle(w.acts) ?? []));
      if (wa.late || wb.late || told.some((t) => t.late)) {
        tally.lateWindows++;
        late.A += Number(wa.late);
        late.B += Number(wb.late);
        late.sessions += Number(told.some((t) => t.late));
        continue;
      }
      compared = true;
      tally.windows++;
      if (!same(wa.observation, wb.observation)) return other(`the event windows differ: A ${show(wa.observation)}, B ${show(wb.observation)}`);
      const [na, nb] = [windowNotifications(wa.observation.stdout, names), windowNotifications(wb.observation.stdout, names)];
      if (na !== nb) return other(`the resource notifications of the event windows differ: A ${na}, B ${nb}`);
    } finally {
      await Promise.all(live.map((l) => l?.close()));
    }
    const [ta, tb] = told;
    if (ta && tb) {
      tally.notified += ta.count;
      for (const era of ['legacy', 'modern'] as const) {
        if (ta[era] !== tb[era]) return other(`the resource notifications to a live ${era === 'legacy' ? '2025-11-25' : '2026-07-28'} session differ: A ${JSON.stringify(ta[era])}, B ${JSON.stringify(tb[era])}`);
      }
    }
    break;
  }
  if (!compared) tally.uncompared.push(`of ${windows.length} windows, A was late in ${late.A}, B in ${late.B}, the live sessions in ${late.sessions}`);

  const [ca, cb] = await Promise.all([mcpClient(a), mcpClient(b)]);
  try {
    const [ta, tb] = await Promise.all([ca.client.listTools(), cb.client.listTools()]);
    if (JSON.stringify(ta) !== JSON.stringify(tb)) return other('the MCP tool lists differ');
    for (const tool of mcpCalls([...new Set([...b.outside, ...a.outside])])) {
      const [ra, rb] = await Promise.all([ca.client.callTool(tool), cb.client.callTool(tool)]);
      tally.mcp++;
      if (normaliseRemovalTimes(JSON.stringify(ra)) !== normaliseRemovalTimes(JSON.stringify(rb))) return other(`MCP ${JSON.stringify(tool)} differs: A ${JSON.stringify(ra)}, B ${JSON.stringify(rb)}`);
    }
    for (const [what, read] of resourceReads([...new Set([...b.outside, ...a.outside])])) {
      const [ra, rb] = await Promise.all([read(ca.client), read(cb.client)]);
      tally.mcp++;
      if (ra !== rb) return other(`MCP ${what} differs: A ${ra}, B ${rb}`);
    }
  } finally {
    await Promise.all([ca.close(), cb.close()]);
  }
  // the window's and the MCP calls' requests too
  const after = gateDifference(a, b);
  return after ? other(after) : null;
}

export function makeNoninterferenceCheck(sut: NoninterferenceSut = {}): Check {
  const raw: CallFn = sut.call ? (m, c) => (sut.call as NonNullable<NoninterferenceSut['call']>)(m, c, rawCall) : rawCall;
  const call: CallFn = (m, c) => gatedCall(m, c, raw);
  return {
    name: NAME,
    summary: 'pairs of machines that differ only outside the agent’s world answer every call alike: raw qrexec, events, MCP, with the gate on and off',
    async run(budget: Budget, seed: number): Promise<CheckReport> {
      const scale = Math.max(1, budget.scale);
      const ops = sut.ops ?? OPERATIONS;
      const gaps = [...noninterferenceGaps(ops), ...probeGaps()];
      if (gaps.length > 0) return { figures: [], failures: coverageFailures(NAME, gaps) };
      // npm test's short sequences at scale 1; the full budget is long ones, about 100,000 calls at the default scale 10
      const length = budgetCount(scale, 24, 340);
      const failures: Failure[] = [];
      const tally: Tally = { operations: new Set(), pairs: 0, calls: 0, seats: 0, special: 0, outsideNamed: 0, edits: 0, busyCalls: 0, operatorActions: 0, windows: 0, lateWindows: 0, windowPairs: 0, uncompared: [], notified: 0, mcp: 0, shrinkRuns: 0, othersPairs: 0, otherWorldEdits: 0, otherWorldNamed: 0, gatePairs: 0, requests: 0, dialogs: 0, plans: 0, allowed: 0, codes: new Set(), drifted: [] };
      const repro = `--seed ${seed} --scale ${scale} --only ${NAME}`;
      const makePair = (index: number, gated: number | null): Pair => {
        const pairSeed = (seed + 7919 * index) >>> 0;
        const r = prng(pairSeed);
        const plain: PairSettings = { mode: r.pick(['least-privilege', 'compat'] as const), birthCeiling: r.pick(['read', 'exec', 'net', 'full'] as const) };
        // with the gate on, every other pair has every operation ask, the rest the model's defaults; a smaller extra pass
        // every fourth plain pair (the first) has the operator's budget, egress qube and limits unset and the lease bounded: the actionable errors that report them
        // every other plain pair (the busy ones) has two other principals' worlds beside the agent's
        const others = gated === null && index % 2 === 1;
        const settings: PairSettings = gated === null ? { ...plain, ...(index % 4 === 0 ? { unset: true } : {}), ...(others ? { others } : {}) } : { ...plain, gate: { asks: gated % 2 === 0 ? 'every' : 'defaults', seed: pairSeed } };
        const busy = gated === null ? index % 2 === 1 : gated % 2 === 1;
        return { index, busy, settings, a: [...generateEdits(r, 2, others), ...RUNNING_ON_A], b: [...generateEdits(r, 4, others), ...(others ? OTHER_WORLD_ON_B : [])] };
      };
      const pairs = [
        ...(sut.gateOnly ? [] : Array.from({ length: 2 * scale }, (_, index) => makePair(index, null))),
        ...Array.from({ length: scale }, (_, i) => makePair(2 * scale + i, i)),
      ];
      const chosen = pairs.filter((pair) => !(sut.busyOnly && !pair.busy) && !(sut.pairs && !sut.pairs.includes(pair.index)));
      // pairs are independent machines: PAIR_LANES of them at once, so one pair's waits (a start, an event window) are
      // another's work; no new pair starts once three have differed
      let differed = 0;
      let done = 0;
      const found = await bounded(chosen.length, PAIR_LANES, async (i) => {
        const pair = chosen[i] as Pair;
        if (differed >= 3) return null;
        const pairSeed = (seed + 7919 * pair.index) >>> 0;
        tally.pairs++;
        tally.edits += pair.a.length + pair.b.length;
        const result = await withPair(pair, seed, sut, async (a, b) => {
          const names = namesOf(a, b);
          if (pair.settings.others) {
            tally.othersPairs++;
            tally.otherWorldEdits += [...pair.a, ...pair.b].filter((e) => e.kind === 'add' && [...a.otherWorlds, ...b.otherWorlds].includes(e.qube.name)).length;
          }
          const calls = generateSequence(pairSeed, names, length, ops, sut.operations);
          if (pair.settings.gate && !sut.operations) calls.splice(2, 0, ...gatePrelude());
          // after the starts, the actionable probes; not with the gate on, whose answers may deny one before its code
          const probes = pair.settings.gate ? [] : probesFor(pair.settings.unset ? 'unset' : 'set', sut.operations);
          calls.splice(2, 0, ...probes.map((p) => p.call));
          const expected = new Map(probes.flatMap((p) => (p.code === undefined ? [] : [[p.call, p.code] as const])));
          try {
            const diff = await firstDifference(a, b, calls, call, pair.busy, tally, names.differing, expected);
            if (diff) return { kind: 'raw' as const, calls, diff };
            // at scale 1 a gate pair compares the raw calls only (a window lasts seconds)
            return await observeMore(a, b, call, tally, sut.rawOnly === true || (pair.settings.gate !== undefined && scale === 1), sut.server, sut.windows);
          } finally {
            if (a.answerer) {
              tally.gatePairs++;
              for (const x of [...a.answerer.answered, ...(b.answerer?.answered ?? [])]) {
                if (x.kind === 'request') tally.requests++;
                else if (x.kind === 'ask') tally.dialogs++;
                else tally.plans++;
                if (x.decision === 'allow') tally.allowed++;
              }
            }
          }
        });
        if (result) differed++;
        done++;
        // a run stopped before its report still tells what differed
        const what = result === null ? '' : result.kind === 'raw' ? `: call ${result.diff.index} ${JSON.stringify(result.diff.call)}: A ${show(result.diff.a)}, B ${show(result.diff.b)}` : `: ${result.what}`;
        budget.progress?.(`pair ${pair.index} ${result ? 'differs' : 'alike'} (${done} of ${chosen.length} done)${what.slice(0, 2000)}`);
        return result === null ? null : { pair, result };
      });
      // reported in the order of the pairs, each raw difference shrunk on fresh pairs one at a time
      for (const f of found) {
        if (!f || failures.length >= 3) continue;
        const { pair, result } = f;
        if (result.kind === 'other') {
          failures.push({ check: NAME, what: result.what, reproduction: `${repro}; ${describePair(pair)}` });
          continue;
        }
        budget.progress?.(`shrinking pair ${pair.index}'s difference`);
        const small = await shrink(pair, seed, sut, call, result.calls, result.diff, sut.shrinkRuns ?? 6 + 4 * scale, tally);
        failures.push({
          check: NAME,
          what: `call ${JSON.stringify(small.diff.call)} answered differently: A ${show(small.diff.a)}, B ${show(small.diff.b)}`,
          reproduction: `${repro}; ${describePair(small.pair)}; shrunk calls (${small.calls.length} of ${result.diff.index + 1}) ${JSON.stringify(small.calls)}`,
        });
      }
      // a late window is retried, so a loaded machine only slows the check; a run that compared none at all (a feed
      // that loses rows on one machine makes every window late there) has said nothing about events
      if (tally.windowPairs > 0 && tally.windows === 0) {
        failures.push({ check: NAME, what: `no event window was compared: every one was late, on every pair (${tally.uncompared.join('; ')})`, reproduction: repro });
      }
      for (const d of tally.drifted.slice(0, 3)) failures.push({ check: NAME, what: `actionable probe drifted: ${d}`, reproduction: `${repro}; verify/noninterference/actionable.ts` });
      const reachable = Object.entries(PROBES).filter(([, p]) => 'call' in p).map(([code]) => code);
      const ranBoth = !sut.operations && !sut.busyOnly && !sut.gateOnly;
      for (const code of ranBoth ? reachable.filter((c) => !tally.codes.has(c)) : []) {
        failures.push({ check: NAME, what: `actionable code ${code} was not reached by any pair`, reproduction: `${repro}; verify/noninterference/actionable.ts` });
      }
      const figures: Figure[] = [
        { label: 'machines compared', value: String(2 * tally.pairs) },
        { label: 'actionable codes answered alike on both machines', value: `${tally.codes.size} of ${reachable.length}` },
        { label: 'outside edits', value: String(tally.edits) },
        { label: 'raw calls compared', value: String(tally.calls) },
        { label: 'operations of the model called', value: `${tally.operations.size} of ${ops.length}` },
        { label: 'calls from sandbox qubes', value: String(tally.seats) },
        { label: 'calls to special targets (not @adminvm)', value: String(tally.special) },
        { label: 'calls naming a qube the machines differ in', value: String(tally.outsideNamed) },
        { label: 'calls compared while the operator worked outside', value: String(tally.busyCalls) },
        { label: 'operator actions outside during those calls', value: String(tally.operatorActions) },
        { label: 'machines compared with two other principals\' worlds', value: String(2 * tally.othersPairs) },
        { label: 'edits in other principals\' worlds', value: String(tally.otherWorldEdits) },
        { label: 'calls naming a qube of another principal\'s world', value: String(tally.otherWorldNamed) },
        { label: 'event windows compared', value: String(tally.windows) },
        { label: 'event windows late, tried again longer', value: String(tally.lateWindows) },
        { label: 'resource notifications to live sessions compared', value: String(tally.notified) },
        { label: 'MCP results compared', value: String(tally.mcp) },
        { label: 'machines compared with the gate on', value: String(2 * tally.gatePairs) },
        { label: 'gate: requests answered', value: String(tally.requests) },
        { label: 'gate: dialogs answered', value: String(tally.dialogs) },
        { label: 'gate: plans answered', value: String(tally.plans) },
        { label: 'gate: of them allowed', value: String(tally.allowed) },
      ];
      if (tally.shrinkRuns > 0) figures.push({ label: 'shrinking runs', value: String(tally.shrinkRuns) });
      return { figures, failures };
    },
  };
}

export const noninterferenceCheck = makeNoninterferenceCheck();
