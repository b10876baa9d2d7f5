import { QmcpError } from '../../shared/errors.js';
import { isQubeName } from '../../shared/names.js';
import type { Qubesd } from '../qubesd.js';
import { isNotFound, NOT_FOUND, parseList, parseTags, replyError } from '../qubesd.js';

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

/** Qubes' one AdminVM: always there, never seen, never a sink, so a named read need not ask. */
const ADMIN_VM: QubeFacts = { name: 'dom0', klass: 'AdminVM', state: 'Running', tags: new Set() };

/**
 * One named qube as qubesd has it now, or undefined when it does not exist.
 * Both reads are always made and both must succeed: a qube that does not
 * exist costs qubesd the same two calls as one outside the umbrella (each
 * fails at its lookup), so the caller's timing of "absent" and "outside"
 * differs only inside qubesd; one that vanishes or appears between the two
 * is absent, as a moment later or earlier.
 */
export async function readQube(qubesd: Qubesd, name: string): Promise<QubeFacts | undefined> {
  if (name === ADMIN_VM.name) return ADMIN_VM;
  // a value that is no qube name (a feature's text) names nothing; asking qubesd would be a framing error
  if (!isQubeName(name)) return undefined;
  // "no such qube" is taken as a value, not thrown: it costs what a found qube does
  const [listed, tags] = await Promise.allSettled([qubesd.reply('admin.vm.List', name), qubesd.reply('admin.vm.tag.List', name)]);
  if (listed.status === 'rejected') throw listed.reason;
  if (tags.status === 'rejected') throw tags.reason;
  const [l, t] = [listed.value, tags.value];
  for (const r of [l, t]) if (!r.ok && r.errorClass !== NOT_FOUND) throw replyError(r);
  if (!l.ok || !t.ok) return undefined;
  const line = parseList(l.text).get(name);
  return line ? { name, klass: line.klass, state: line.state, tags: new Set(parseTags(t.text)) } : undefined;
}

/** A lookup of a qube a named snapshot did not read: a service that forgot to name it, refused as a failure. */
export class UnreadQube extends QmcpError {
  readonly code = 'ERR_QMCP_UNREAD_QUBE';
  constructor(name: string) {
    super(`the snapshot did not read ${JSON.stringify(name)}`);
  }
}

/**
 * One read of the machine that scope and tier are decided on: of every qube
 * (a listing, a scan), or of only the qubes a call names. Either is taken
 * the same way whatever the call names, so that "absent" and "outside the
 * umbrella" go through one membership test.
 */
export class Snapshot {
  private constructor(
    private readonly qubes: Map<string, QubeFacts>,
    private readonly rules: ScopeRules,
    /** The names read, for a named snapshot; null when it read the whole machine. */
    private readonly read: Set<string> | null,
  ) {}

  /**
   * Reads the whole machine, or with `names` only those qubes (the targets
   * and the qubes the call refers to). The whole machine is qubesd's system
   * info: every qube's class, state and tags in one call, answered from one
   * state, so no qube is seen half-removed.
   */
  static async take(qubesd: Qubesd, rules: ScopeRules, names?: readonly string[]): Promise<Snapshot> {
    if (names) {
      const snapshot = new Snapshot(new Map(), rules, new Set());
      await snapshot.include(qubesd, names);
      return snapshot;
    }
    const qubes = new Map<string, QubeFacts>();
    for (const [name, { klass, state, tags }] of await qubesd.systemInfo()) {
      // the AdminVM's tags decide nothing (it is never seen), as in a named read
      qubes.set(name, { name, klass, state, tags: new Set(klass === 'AdminVM' ? [] : tags) });
    }
    return new Snapshot(qubes, rules, null);
  }

  /**
   * Reads the named qubes this snapshot has not read yet (qubes an answer
   * refers to, known only once the target's properties are read); what it
   * read before stays as it was. A name given twice is read twice: how many
   * reads a call makes must not depend on whether two values name one
   * outside qube. Nothing to do for a whole snapshot.
   */
  async include(qubesd: Qubesd, names: readonly string[]): Promise<void> {
    const read = this.read;
    if (!read) return;
    const fresh = names.filter((n) => !read.has(n));
    const facts = await Promise.all(fresh.map((n) => readQube(qubesd, n)));
    fresh.forEach((n, i) => {
      read.add(n);
      const q = facts[i];
      if (q) this.qubes.set(n, q);
    });
  }

  /** The qube by name as read, visible or not; a named snapshot refuses a name it did not read. */
  private lookup(name: string): QubeFacts | undefined {
    if (this.read && !this.read.has(name)) throw new UnreadQube(name);
    return this.qubes.get(name);
  }

  /** Every qube's facts: only a whole snapshot has them. */
  private everything(): Map<string, QubeFacts> {
    if (this.read) throw new UnreadQube('every qube');
    return this.qubes;
  }

  /** The qube if the agent may see it, else undefined (absent and outside alike). */
  visible(name: string): QubeFacts | undefined {
    const q = this.lookup(name);
    return q && seen(q, this.rules) ? q : undefined;
  }

  /**
   * The qube as it is now, read again just before a call that changes it,
   * if the agent still sees it with at least `tier`: the snapshot may predate
   * a removal that has since hidden it.
   */
  async recheck(qubesd: Qubesd, name: string, tier: Tier): Promise<QubeFacts | undefined> {
    const was = this.lookup(name);
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

  /**
   * A sink the agent may push files to: never also in the umbrella, and not
   * held incomplete or a tombstone, whose policy lines refuse every call.
   */
  sink(name: string): QubeFacts | undefined {
    const q = this.lookup(name);
    if (!q || q.klass === 'AdminVM') return undefined;
    const { sink, umbrella, hiding } = this.rules;
    return q.tags.has(sink) && !q.tags.has(umbrella) && !hiding.some((t) => q.tags.has(t)) ? q : undefined;
  }

  /** Every sink the agent may push to, in name order. */
  allSinks(): QubeFacts[] {
    return [...this.qubes.keys()]
      .sort()
      .map((n) => this.sink(n))
      .filter((q): q is QubeFacts => q !== undefined);
  }

  /** Every visible qube, in name order. */
  allVisible(): QubeFacts[] {
    return [...this.everything().keys()]
      .sort()
      .map((n) => this.visible(n))
      .filter((q): q is QubeFacts => q !== undefined);
  }

  /** Every qube, visible or not, in name order: for dom0-side checks only, never for answers. */
  allQubes(): QubeFacts[] {
    const qubes = this.everything();
    return [...qubes.keys()].sort().map((n) => qubes.get(n) as QubeFacts);
  }

  /** Any qube by name, visible or not: for dom0-side checks only, never for answers. */
  any(name: string): QubeFacts | undefined {
    return this.lookup(name);
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
