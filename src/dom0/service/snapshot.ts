import type { Qubesd } from '../qubesd.js';

export type Tier = 'read' | 'exec' | 'net' | 'full';
export const TIERS: readonly Tier[] = ['read', 'exec', 'net', 'full'];

/** What decides whether the agent sees a qube, and at which tier. */
export interface ScopeRules {
  readonly umbrella: string;
  readonly sink: string;
  readonly elevation: { readonly exec: string; readonly net: string; readonly full: string };
  readonly mode: 'compat' | 'least-privilege';
  /** Tags that hide an umbrella qube: not yet complete, or a tombstone. */
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

  static async take(qubesd: Qubesd, rules: ScopeRules): Promise<Snapshot> {
    const listed = await qubesd.list();
    const entries = await Promise.all(
      [...listed].map(async ([name, { klass, state }]) => {
        const tags = klass === 'AdminVM' ? [] : await qubesd.tags(name);
        return [name, { name, klass, state, tags: new Set(tags) }] as const;
      }),
    );
    return new Snapshot(new Map(entries), rules);
  }

  /** The qube if the agent may see it, else undefined (absent and outside alike). */
  visible(name: string): QubeFacts | undefined {
    const q = this.qubes.get(name);
    if (!q || q.klass === 'AdminVM') return undefined;
    const { umbrella, sink, hiding } = this.rules;
    // A hand-made umbrella+sink hybrid is seen as neither (fail closed).
    if (!q.tags.has(umbrella) || q.tags.has(sink)) return undefined;
    if (hiding.some((t) => q.tags.has(t))) return undefined;
    return q;
  }

  /** The agent's tier over a visible qube; two elevation tags count as the higher. */
  tier(q: QubeFacts): Tier {
    const { elevation, mode } = this.rules;
    if (q.tags.has(elevation.full)) return 'full';
    if (q.tags.has(elevation.net)) return 'net';
    if (q.tags.has(elevation.exec)) return 'exec';
    return mode === 'compat' ? 'full' : 'read';
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

  /** Any qube by name, visible or not: for dom0-side checks only, never for answers. */
  any(name: string): QubeFacts | undefined {
    return this.qubes.get(name);
  }
}

export function atLeast(tier: Tier, needed: Tier): boolean {
  return TIERS.indexOf(tier) >= TIERS.indexOf(needed);
}
