import type { Qubesd } from '../qubesd.js';
import { eachQube, isNotFound } from '../qubesd.js';

export type Tier = 'read' | 'exec' | 'net' | 'full';
export const TIERS: readonly Tier[] = ['read', 'exec', 'net', 'full'];

/** What decides whether the agent sees a qube, and at which tier. */
export interface ScopeRules {
  readonly umbrella: string;
  readonly sink: string;
  readonly elevation: { readonly exec: string; readonly net: string; readonly full: string };
  readonly mode: 'compat' | 'least-privilege';
  /** Tags that hide an umbrella qube: not yet complete (first: the events filter tells it apart), or a tombstone. */
  readonly hiding: readonly string[];
}

export interface QubeFacts {
  readonly name: string;
  readonly klass: string;
  readonly state: string;
  readonly tags: ReadonlySet<string>;
}

/**
 * One read of the whole machine, taken the same way whatever the call names,
 * so that "absent" and "outside the umbrella" go through one membership test.
 */
export class Snapshot {
  private constructor(
    private readonly qubes: ReadonlyMap<string, QubeFacts>,
    private readonly rules: ScopeRules,
  ) {}

  /**
   * Lists the machine, then reads each qube's tags. A qube removed between
   * the two reads is absent, as it would be a moment later, so the
   * operator's work outside never turns a call into a refusal.
   */
  static async take(qubesd: Qubesd, rules: ScopeRules): Promise<Snapshot> {
    const listed = await qubesd.list();
    const tags = await eachQube([...listed.keys()], async (name) =>
      listed.get(name)?.klass === 'AdminVM' ? [] : await qubesd.tags(name),
    );
    const qubes = new Map<string, QubeFacts>();
    for (const [name, { klass, state }] of listed) {
      const t = tags.get(name);
      if (t) qubes.set(name, { name, klass, state, tags: new Set(t) });
    }
    return new Snapshot(qubes, rules);
  }

  /** The qube if the agent may see it, else undefined (absent and outside alike). */
  visible(name: string): QubeFacts | undefined {
    const q = this.qubes.get(name);
    return q && seen(q, this.rules) ? q : undefined;
  }

  /**
   * The qube as it is now, read again just before a call that changes it,
   * if the agent still sees it with at least `tier`: the snapshot may predate
   * a removal that has since hidden it.
   */
  async recheck(qubesd: Qubesd, name: string, tier: Tier): Promise<QubeFacts | undefined> {
    const was = this.qubes.get(name);
    if (!was) return undefined;
    let tags: string[];
    try {
      tags = await qubesd.tags(name);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
    const q = { ...was, tags: new Set(tags) };
    return seen(q, this.rules) && atLeast(this.tier(q), tier) ? q : undefined;
  }

  /** The agent's tier over a visible qube; two elevation tags count as the higher. */
  tier(q: QubeFacts): Tier {
    return tierOf(q.tags, this.rules);
  }

  /** A sink the agent may push files to (never also in the umbrella). */
  sink(name: string): QubeFacts | undefined {
    const q = this.qubes.get(name);
    if (!q || q.klass === 'AdminVM') return undefined;
    return q.tags.has(this.rules.sink) && !q.tags.has(this.rules.umbrella) ? q : undefined;
  }

  /** Every visible qube, in name order. */
  allVisible(): QubeFacts[] {
    return [...this.qubes.keys()]
      .sort()
      .map((n) => this.visible(n))
      .filter((q): q is QubeFacts => q !== undefined);
  }

  /** Every qube, visible or not, in name order: for dom0-side checks only, never for answers. */
  allQubes(): QubeFacts[] {
    return [...this.qubes.keys()].sort().map((n) => this.qubes.get(n) as QubeFacts);
  }

  /** Any qube by name, visible or not: for dom0-side checks only, never for answers. */
  any(name: string): QubeFacts | undefined {
    return this.qubes.get(name);
  }
}

/** The tier a qube's tags give it under RULES; two elevation tags count as the higher. */
export function tierOf(tags: ReadonlySet<string>, rules: ScopeRules): Tier {
  const { elevation, mode } = rules;
  if (tags.has(elevation.full)) return 'full';
  if (tags.has(elevation.net)) return 'net';
  if (tags.has(elevation.exec)) return 'exec';
  return mode === 'compat' ? 'full' : 'read';
}

export function atLeast(tier: Tier, needed: Tier): boolean {
  return TIERS.indexOf(tier) >= TIERS.indexOf(needed);
}

function seen(q: QubeFacts, rules: ScopeRules): boolean {
  if (q.klass === 'AdminVM') return false;
  const { umbrella, sink, hiding } = rules;
  // A hand-made umbrella+sink hybrid is seen as neither (fail closed).
  if (!q.tags.has(umbrella) || q.tags.has(sink)) return false;
  return !hiding.some((t) => q.tags.has(t));
}

/** A qube a call acts on, and the tier the agent needs over it. */
export interface TargetNeed {
  readonly name: string;
  readonly tier: Tier;
}

/** The needed qubes as the snapshot has them, or why the call is refused (absent and outside alike). */
export function visibleTargets(snapshot: Snapshot, needs: readonly TargetNeed[]): QubeFacts[] | string {
  const targets: QubeFacts[] = [];
  for (const need of needs) {
    const q = snapshot.visible(need.name);
    if (!q || !atLeast(snapshot.tier(q), need.tier)) return q ? `tier below ${need.tier}` : 'not visible';
    targets.push(q);
  }
  return targets;
}
