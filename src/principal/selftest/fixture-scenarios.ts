/**
 * The scenarios that create and remove: only fixtures made here, inside the
 * reserved prefix, are ever changed. A removal makes a tombstone, which the
 * operator reaps or restores with `qmcp dom0 tombstones`.
 */
import { describe, isRefusal, jsonOf, PROBES, sameReply } from './agent.js';
import type { Json } from './agent.js';
import type { Reply } from './caller.js';
import { Findings } from './context.js';
import type { Context, Fixture, Scenario } from './context.js';

interface Figures {
  readonly used: number;
  readonly cap: number;
  readonly headroom: number;
}

function figuresOf(r: Reply): Figures | null {
  const v = jsonOf(r);
  if (!v) return null;
  const { used, cap, headroom } = v;
  const ok = [used, cap, headroom].every((n) => Number.isSafeInteger(n) && (n as number) >= 0);
  return ok ? { used: used as number, cap: cap as number, headroom: headroom as number } : null;
}

async function figures(ctx: Context, f: Findings): Promise<Figures | null> {
  const r = await ctx.agent.poolFigures();
  const v = figuresOf(r);
  if (!v) f.fail(`pool figures: ${describe(r)}`);
  else f.check(v.headroom === Math.max(0, v.cap - v.used), `pool figures ${JSON.stringify(v)}: headroom is not cap - used`);
  return v;
}

const gib = (n: number): string => `${(n / 1024 ** 3).toFixed(1)} GiB`;

/** The message of an actionable dom0 error (exit 1, {"error":{code,message}}), for a report. */
function actionable(r: Reply): string {
  if (r.status !== 1) return describe(r);
  let e: unknown;
  try {
    e = (JSON.parse(r.stdout.toString('utf8')) as Json)['error'];
  } catch {
    return describe(r);
  }
  return typeof e === 'object' && e !== null ? `${String((e as Json)['code'])}: ${String((e as Json)['message'])}` : describe(r);
}

const MAX_BIRTH_READS = 200;

/** Runs `make` while reading the new name's info over and over; every read must be a refusal or the finished qube. */
async function watchBirth(ctx: Context, name: string, make: () => Promise<Reply>): Promise<{ reply: Reply; seen: Reply[] }> {
  let done = false;
  const seen: Reply[] = [];
  const made = make().finally(() => {
    done = true;
  });
  // at least one read while the create runs, then as many as fit, bounded;
  // each turn yields, so a caller that answers at once cannot starve the create
  do {
    seen.push(await ctx.agent.info(name));
    await new Promise((next) => setImmediate(next));
  } while (!done && seen.length < MAX_BIRTH_READS);
  return { reply: await made, seen };
}

/** The born qube's info, checked for completeness; null when unreadable. */
async function checkBorn(ctx: Context, f: Findings, name: string, seen: Reply[], umbrella: string | null): Promise<Json | null> {
  const after = await ctx.agent.info(name);
  const info = jsonOf(after);
  if (!f.check(info !== null && info['name'] === name, `${name} was created but its info does not answer: ${describe(after)}`)) return null;
  const tags = JSON.stringify(info?.['tags']);
  f.check(umbrella === null ? tags.length > 2 : tags === JSON.stringify([umbrella]), `${name} is born with tags ${tags}`);
  const absent = (await ctx.probeMatrix()).get('info')?.get(ctx.absentInPrefix);
  for (const r of seen) {
    const early = jsonOf(r);
    if (early === null) {
      f.check(absent !== undefined && sameReply(r, absent), `while being created, ${name} answered ${describe(r)}`);
      continue;
    }
    for (const key of ['netvm', 'template', 'default_dispvm', 'tags']) {
      f.check(JSON.stringify(early[key]) === JSON.stringify(info?.[key]), `${name} was visible before it was complete (${key} ${JSON.stringify(early[key])})`);
    }
  }
  const list = jsonOf(await ctx.agent.list())?.['qubes'];
  f.check(Array.isArray(list) && list.some((r: Json) => r['name'] === name), `${name} is not in the list after its create`);
  return info;
}

function umbrellaOf(infos: Iterable<Json>): string | null {
  for (const i of infos) {
    const t = i['tags'];
    if (Array.isArray(t) && typeof t[0] === 'string') return t[0];
  }
  return null;
}

async function egressCheck(ctx: Context, f: Findings, name: string, netvm: unknown): Promise<void> {
  if (!f.check(typeof netvm === 'string', `${name} from a template is born with netvm ${JSON.stringify(netvm)}, not the principal's egress qube`)) return;
  const egress = jsonOf(await ctx.agent.info(netvm as string));
  f.check(egress !== null && egress['provides_network'] === true, `${name}'s netvm ${String(netvm)} is not a visible network qube`);
}

export const createRules: Scenario = {
  id: 'create-rules',
  async run(ctx) {
    const f = new Findings();
    const world = await ctx.loadWorld();
    if (!world) return { verdict: 'NOT-RUN', reason: 'qmcp.List did not answer a list' };
    const umbrella = umbrellaOf(world.infos.values());
    const before = await figures(ctx, f);

    // a name outside the prefix: refused on its shape, whatever the template, and nothing changes
    const bare = `st${ctx.token}-noprefix`;
    const outside = bare.startsWith(ctx.options.prefix) ? `x${bare}` : bare;
    const templates = ctx.options.template !== undefined ? [ctx.options.template] : world.rows.filter((r) => r['class'] === 'TemplateVM').map((r) => r['name'] as string);
    const r1 = await ctx.agent.create(outside, templates[0] ?? 'debian-12');
    const r2 = await ctx.agent.create(outside, ctx.outOfWorld[5] as string);
    f.check(isRefusal(r1), `a create named ${outside}, outside the prefix, answered ${describe(r1)}`);
    f.check(sameReply(r1, r2), `a create outside the prefix answers differently with a real and an absent template`);
    f.check(isRefusal(await ctx.agent.info(outside)), `${outside} is visible after its refused create`);
    const mid = await figures(ctx, f);
    if (before && mid) f.check(mid.used === before.used, `pool use changed from ${before.used} to ${mid.used} after a refused create`);

    // the fixture, from the first template that accepts
    const why: string[] = [];
    let born: Json | null = null;
    for (const t of templates) {
      const { reply, seen } = await watchBirth(ctx, ctx.fixtureName, () => ctx.agent.create(ctx.fixtureName, t));
      if (reply.status !== 0) {
        why.push(`${t}: ${actionable(reply)}`);
        f.check(seen.every(isRefusal), `${ctx.fixtureName} was visible during a create that failed`);
        continue;
      }
      ctx.fixtures.push({ name: ctx.fixtureName, kind: 'appvm', removed: false });
      ctx.template = t;
      born = await checkBorn(ctx, f, ctx.fixtureName, seen, umbrella);
      if (born) {
        f.check(born['template'] === t, `${ctx.fixtureName} has template ${JSON.stringify(born['template'])}, not ${t}`);
        await egressCheck(ctx, f, ctx.fixtureName, born['netvm']);
      }
      break;
    }
    if (ctx.template === null) {
      f.notRun(templates.length === 0 ? 'no visible template to create a fixture from' : `no template accepted a create (${why.join('; ')})`);
      if (mid) f.note(`pool ${gib(mid.used)} used of ${gib(mid.cap)}, headroom ${gib(mid.headroom)}`);
      return f.outcome();
    }
    const after = await figures(ctx, f);
    if (mid && after) f.check(after.used > mid.used, `pool use did not grow with ${ctx.fixtureName} (${mid.used} then ${after.used})`);

    // a clone keeps its source's netvm exactly
    const cloneName = `${ctx.fixtureName}-c`;
    const { reply: cr, seen: cseen } = await watchBirth(ctx, cloneName, () => ctx.agent.clone(ctx.fixtureName, cloneName));
    if (cr.status === 0) {
      ctx.fixtures.push({ name: cloneName, kind: 'clone', removed: false });
      const clone = await checkBorn(ctx, f, cloneName, cseen, umbrella);
      if (clone && born) f.check(clone['netvm'] === born['netvm'], `the clone's netvm is ${JSON.stringify(clone['netvm'])}, its source's ${JSON.stringify(born['netvm'])}`);
    } else {
      f.notRun(`clone of ${ctx.fixtureName}: ${actionable(cr)}`);
    }

    // a disposable keeps its disposable template's netvm exactly
    const dvmt = ctx.options.dvmt ?? world.names.find((n) => world.infos.get(n)?.['template_for_dispvms'] === true);
    if (dvmt === undefined) {
      f.note('no visible disposable template: disposable create not tried');
    } else {
      const dispName = `${ctx.fixtureName}-d`;
      const { reply: dr, seen: dseen } = await watchBirth(ctx, dispName, () => ctx.agent.disposable(dvmt, dispName));
      if (dr.status === 0) {
        ctx.fixtures.push({ name: dispName, kind: 'disposable', removed: false });
        const disp = await checkBorn(ctx, f, dispName, dseen, umbrella);
        const source = jsonOf(await ctx.agent.info(dvmt));
        if (disp && source) f.check(disp['netvm'] === source['netvm'], `the disposable's netvm is ${JSON.stringify(disp['netvm'])}, its template's ${JSON.stringify(source['netvm'])}`);
      } else {
        f.notRun(`disposable from ${dvmt}: ${actionable(dr)}`);
      }
    }
    const last = await figures(ctx, f);
    const shown = last ?? after;
    f.note(`fixture ${ctx.fixtureName} from ${ctx.template}` + (shown ? `; pool ${gib(shown.used)} used of ${gib(shown.cap)}, headroom ${gib(shown.headroom)} (over-budget creates are not forced)` : ''));
    return f.outcome();
  },
};

export const tombstones: Scenario = {
  id: 'tombstones',
  async run(ctx) {
    const f = new Findings();
    const victim = ctx.fixture('clone') ?? ctx.fixture('disposable');
    if (!victim) return { verdict: 'NOT-RUN', reason: 'no clone or disposable fixture to remove (see create-rules)' };
    const before = await figures(ctx, f);
    const { reply: r, waited } = await ctx.gated('remove', victim.name, 'allow', (h) => ctx.agent.remove(victim.name, h));
    if (r.status !== 0) {
      const why = waited ? 'it waited for the operator and was not allowed (denied, lapsed or withdrawn)' : actionable(r);
      f.notRun(`remove of ${victim.name}: ${why}; it is left for the operator`);
      return f.outcome();
    }
    victim.removed = true;
    const list = jsonOf(await ctx.agent.list())?.['qubes'];
    f.check(Array.isArray(list) && !list.some((q: Json) => q['name'] === victim.name), `${victim.name} is still listed after its removal`);
    // invisible: every probe answers exactly as for a name that never existed
    const matrix = await ctx.probeMatrix();
    const mine = await Promise.all(PROBES.map((p) => p.call(ctx.agent, victim.name)));
    PROBES.forEach((p, i) => {
      const absent = matrix.get(p.id)?.get(ctx.absentInPrefix);
      const r = mine[i] as Reply;
      f.check(absent !== undefined && sameReply(r, absent), `${p.id} on the removed ${victim.name} answers ${describe(r)}, unlike an absent name`);
    });
    // the name stays taken
    if (ctx.template !== null) {
      const again = await ctx.agent.create(victim.name, ctx.template);
      f.check(isRefusal(again), `a create reusing the removed name ${victim.name} answered ${describe(again)}`);
      if (again.status === 0) ctx.fixtures.push({ name: victim.name, kind: 'appvm', removed: false });
    }
    const after = await figures(ctx, f);
    if (before && after) f.check(after.used === before.used, `pool use went from ${before.used} to ${after.used}: the tombstone is not counted`);
    f.note(`${victim.name} removed: invisible, name still taken, still counted in the pool figures`);
    return f.outcome();
  },
};

/** Removes the fixtures still standing (all but the first with `keep`); names what is left. */
export async function cleanUp(ctx: Context): Promise<{ removed: string[]; left: string[] }> {
  const removed = ctx.fixtures.filter((x) => x.removed).map((x) => x.name);
  const left: string[] = [];
  const standing = ctx.fixtures.filter((x) => !x.removed);
  // children first: a source in use by another qube cannot be removed
  const order = (x: Fixture): number => (x.kind === 'appvm' ? 1 : 0);
  for (const x of standing.sort((a, b) => order(a) - order(b))) {
    if (ctx.options.keep) {
      left.push(x.name);
      continue;
    }
    // under the gate the operator is asked to allow it; with --gate-answers skip it is withdrawn and left
    const { reply: r } = await ctx.gated('remove', x.name, 'allow', (h) => ctx.agent.remove(x.name, h));
    if (r.status === 0) {
      x.removed = true;
      removed.push(x.name);
    } else left.push(x.name);
  }
  return { removed, left };
}
