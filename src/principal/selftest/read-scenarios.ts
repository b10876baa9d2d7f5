/** The scenarios that only read: visibility, uniform refusals, redaction, and tiers by harmless probes. */
import { decodeExecReply } from '../../shared/inqube-protocol.js';
import { isQubeName } from '../../shared/names.js';
import { adminAnswer, describe, isRefusal, sameReply } from './agent.js';
import type { Json } from './agent.js';
import { Findings } from './context.js';
import type { Context, Outcome, Scenario, World } from './context.js';

/** Properties whose value names a qube (SPEC §4.4). */
export const REFERENCE_PROPERTIES: readonly string[] = ['template', 'netvm', 'default_dispvm', 'guivm', 'audiovm', 'management_dispvm'];

const noList = (): Outcome => ({ verdict: 'NOT-RUN', reason: 'qmcp.List did not answer a list' });

export const visibility: Scenario = {
  id: 'visibility',
  async run(ctx) {
    const f = new Findings();
    const world = await ctx.loadWorld();
    if (!world) return { verdict: 'FAIL', reason: 'qmcp.List did not answer a list' };
    const seen = new Set<string>();
    for (const name of world.names) {
      f.check(isQubeName(name), `the list holds a malformed name ${JSON.stringify(name)}`);
      f.check(!seen.has(name), `the list names ${name} twice`);
      seen.add(name);
      f.check(name !== 'dom0', 'the list names dom0');
      const info = world.infos.get(name);
      f.check(info !== undefined && info['name'] === name, `${name} is listed but its info does not answer`);
    }
    const matrix = await ctx.probeMatrix();
    for (const [service, row] of matrix) {
      const [first, ...rest] = ctx.outOfWorld;
      const ref = row.get(first as string);
      if (!ref) continue;
      for (const name of rest) {
        const r = row.get(name);
        if (r && !sameReply(ref, r)) f.fail(`${service} on ${JSON.stringify(name)} (${describe(r)}) differs from ${JSON.stringify(first)} (${describe(ref)})`);
      }
    }
    f.note(`${world.names.length} listed qubes all readable; ${ctx.outOfWorld.length} out-of-world names answer byte-identically on ${matrix.size} services`);
    return f.outcome();
  },
};

export const uniformRefusals: Scenario = {
  id: 'uniform-refusals',
  async run(ctx) {
    const f = new Findings();
    const matrix = await ctx.probeMatrix();
    let calls = 0;
    for (const [service, row] of matrix) {
      for (const [name, r] of row) {
        calls++;
        f.check(isRefusal(r), `${service} on ${JSON.stringify(name)}: ${describe(r)}, not exit 126 with "Request refused" and empty stdout`);
      }
    }
    f.note(`${calls} calls all refused with exit 126, "Request refused", empty stdout`);
    return f.outcome();
  },
};

/** Every string anywhere inside a JSON value. */
function strings(v: unknown, out: string[] = []): string[] {
  if (typeof v === 'string') out.push(v);
  else if (Array.isArray(v)) for (const x of v) strings(x, out);
  else if (typeof v === 'object' && v !== null) for (const x of Object.values(v)) strings(x, out);
  return out;
}

/** A reference may be none, a listed qube, or a sentinel that is no qube name at all. */
function referenceOk(world: World, v: unknown): boolean {
  if (v === null) return true;
  if (typeof v !== 'string') return false;
  return world.names.includes(v) || !isQubeName(v);
}

export const redaction: Scenario = {
  id: 'redaction',
  async run(ctx) {
    const f = new Findings();
    const world = await ctx.loadWorld();
    if (!world) return noList();
    for (const row of world.rows) {
      for (const key of ['template', 'netvm']) {
        f.check(referenceOk(world, row[key]), `the list's ${key} of ${String(row['name'])} names ${JSON.stringify(row[key])}, which is not listed`);
      }
    }
    const umbrellas = new Set<string>();
    for (const [name, info] of world.infos) {
      for (const key of REFERENCE_PROPERTIES) {
        if (key in info) f.check(referenceOk(world, info[key]), `${key} of ${name} names ${JSON.stringify(info[key])}, which is not listed`);
      }
      f.check(!('ip' in info) && !('visible_ip' in info), `info of ${name} shows an IP address`);
      const tags = info['tags'];
      if (f.check(Array.isArray(tags) && tags.length === 1 && typeof tags[0] === 'string', `tags of ${name} are ${JSON.stringify(tags)}, not exactly the umbrella tag`)) {
        umbrellas.add((tags as string[])[0] as string);
      }
    }
    f.check(umbrellas.size <= 1, `qubes show different tags: ${[...umbrellas].join(', ')}`);
    // a tier or bookkeeping tag in any output would tell the agent its limits without a refusal
    // a sink's name may be its tag's (the demo's is): it is listed, not leaked
    const forbidden = (s: string): boolean =>
      !world.names.includes(s) && !world.sinks.includes(s) && (ctx.options.tierTags.includes(s) || s.startsWith('created-by-') || s.startsWith('qmcp-'));
    for (const out of world.outputs) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(out.toString('utf8'));
      } catch {
        continue;
      }
      for (const s of strings(parsed)) f.check(!forbidden(s), `an output shows the tag ${JSON.stringify(s)}`);
    }
    f.note(`${world.infos.size} infos name only listed qubes or "(outside)"; tags show only ${[...umbrellas].join(', ') || 'nothing'}`);
    return f.outcome();
  },
};

/** An operator's qube is only read here (state, firewall); exec `true` only with --probe-exec, and only where it runs. */
export const tiers: Scenario = {
  id: 'tiers',
  async run(ctx) {
    const f = new Findings();
    const world = await ctx.loadWorld();
    if (!world) return noList();
    const running: string[] = [];
    await Promise.all(
      world.names.map(async (name) => {
        const state = await ctx.agent.admin(name, 'state');
        if (f.check(adminAnswer(state) === 'ok' && /power_state=/.test(state.stdout.toString('latin1')), `CurrentState of visible ${name}: ${describe(state)}`)) {
          if (/(?:^| )power_state=Running(?: |$)/.test(state.stdout.toString('latin1'))) running.push(name);
        }
        const fw = await ctx.agent.admin(name, 'firewall.get');
        f.check(adminAnswer(fw) !== null, `firewall.Get of visible ${name}: ${describe(fw)}`);
      }),
    );
    f.note(`${world.names.length} visible qubes answer info, state and firewall reads`);
    if (ctx.options.probeExec) {
      const execs: string[] = [];
      for (const name of running.sort()) {
        const r = await ctx.agent.execTrue(name);
        if (isRefusal(r)) continue;
        let exit: number | null = null;
        try {
          exit = r.status === 0 ? decodeExecReply(r.stdout).exitStatus : null;
        } catch {
          exit = null;
        }
        if (f.check(exit === 0, `exec true in ${name}: ${describe(r)}`)) execs.push(name);
      }
      f.note(`exec allowed in ${execs.length} of ${running.length} running qubes${execs.length ? ` (${execs.join(', ')})` : ''}`);
    }
    await fixtureLadder(ctx, f);
    return f.outcome();
  },
};

const LADDER = ['exec', 'net', 'full'] as const;

/** The highest rung a fixture allows, found by probes that change nothing: a kill of a halted qube, a firewall reload, its own label set again. */
async function ladderOf(ctx: Context, name: string, f: Findings): Promise<number | null> {
  const state = await ctx.agent.admin(name, 'state');
  if (!/(?:^| )power_state=Halted(?: |$)/.test(state.stdout.toString('latin1'))) {
    f.notRun(`fixture ${name} is not halted; its tier was not probed`);
    return null;
  }
  const info = await ctx.agent.info(name);
  const label = (JSON.parse(info.status === 0 ? info.stdout.toString('utf8') : '{}') as Json)['label'];
  // a wait for the operator is withdrawn at once: only a call the tier allows ever waits
  const exec = await ctx.gated('kill', name, null, (h) => ctx.agent.kill(name, h));
  const full = typeof label === 'string' ? await ctx.gated('property.set', name, null, (h) => ctx.agent.setProperty(name, 'label', label, h)) : null;
  const allowed = [
    exec.waited || !isRefusal(exec.reply),
    !isRefusal(await ctx.agent.admin(name, 'firewall.reload')),
    full !== null && (full.waited || !isRefusal(full.reply)),
  ];
  const top = allowed.lastIndexOf(true);
  if (!f.check(allowed.slice(0, top + 1).every(Boolean), `fixture ${name} allows ${LADDER.filter((_, i) => allowed[i]).join(', ')}: not a ladder`)) return null;
  return top;
}

async function fixtureLadder(ctx: Context, f: Findings): Promise<void> {
  const base = ctx.fixture('appvm');
  if (!base) {
    f.notRun('no fixture to probe tiers on (see create-rules)');
    return;
  }
  const rung = (n: number): string => (n < 0 ? 'read' : LADDER[n] as string);
  const top = await ladderOf(ctx, base.name, f);
  if (top === null) return;
  const parts = [`${base.name}: ${rung(top)}`];
  const children = (['clone', 'disposable'] as const).flatMap((kind) => {
    const child = ctx.fixture(kind);
    return child ? [{ kind, name: child.name }] : [];
  });
  const rungs = await Promise.all(children.map((c) => ladderOf(ctx, c.name, f)));
  children.forEach(({ kind, name }, i) => {
    const t = rungs[i];
    if (t === null || t === undefined) return;
    parts.push(`${name}: ${rung(t)}`);
    if (kind === 'clone') f.check(t <= top, `the clone ${name} is at ${rung(t)}, above its source at ${rung(top)}`);
  });
  f.note(`fixture tiers ${parts.join(', ')}`);
}
