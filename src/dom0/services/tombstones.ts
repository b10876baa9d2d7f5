/**
 * qmcp.TombstoneList and qmcp.TombstoneRestore+QUBE: the agent's own
 * tombstones, the qubes it removed (SPEC §4.9). A tombstone is outside the
 * umbrella, so these services decide who may see and restore it: only one
 * carrying this principal's owner tag. The operator's tombstones and another
 * principal's are answered as absent names are. A restore goes through the
 * operator's restore path (reinstate), under the budget lock, which
 * `qmcp dom0 principal remove` holds too: a restore either ends before that
 * reads the principal's qubes, or finds the principal gone.
 */
import { isQubeName } from '../../shared/names.js';
import { footprint, used, withinCaps } from '../create/budget.js';
import type { WriteDeps } from '../create/deps.js';
import { takeBudgetLock } from '../create/lock.js';
import { isInstalledPrincipal } from '../create/settings.js';
import { ownerTag } from '../create/tags.js';
import { isNotFound } from '../qubesd.js';
import type { Qubesd } from '../qubesd.js';
import { ActionableError, ServiceRefusal } from '../service/refusal.js';
import type { ServiceSpec } from '../service/run.js';
import type { ScopeRules, Snapshot, Tier } from '../service/snapshot.js';
import { isTombstoneMarker, markerTime } from '../tombstones/markers.js';
import { reinstate } from '../tombstones/operator.js';
import { parseNothing } from './shapes.js';

/**
 * Whether the tags are one of this principal's tombstones: a tombstone
 * marker, its owner tag, and neither the umbrella nor a sink (a hand-made
 * hybrid belongs to no one).
 */
export function ownTombstone(tags: ReadonlySet<string>, scope: ScopeRules, principal: string): boolean {
  if (tags.has(scope.umbrella) || tags.has(scope.sink)) return false;
  return tags.has(ownerTag(principal)) && [...tags].some(isTombstoneMarker);
}

export interface TombstoneRow {
  readonly name: string;
  readonly klass: string;
  /** When it was removed; null when its marker is undatable. */
  readonly removed: string | null;
  /** The bytes its persistent volumes hold, counted in the budget. */
  readonly bytes: number;
}

function ownTombstones(snapshot: Snapshot, scope: ScopeRules, principal: string): string[] {
  return snapshot
    .allQubes()
    .filter((q) => q.klass !== 'AdminVM' && !snapshot.visible(q.name) && ownTombstone(q.tags, scope, principal))
    .map((q) => q.name);
}

export function tombstoneListService(scope: ScopeRules): ServiceSpec<Record<string, never>> {
  return {
    operation: 'tombstone.list',
    changesState: false,
    parse: parseNothing,
    targets: () => [],
    async handle({ qubesd, snapshot, principal }): Promise<{ tombstones: TombstoneRow[] }> {
      const rows: TombstoneRow[] = [];
      for (const name of ownTombstones(snapshot, scope, principal)) {
        const q = snapshot.any(name);
        if (!q) continue;
        let bytes: number;
        try {
          bytes = (await footprint(qubesd, name)).total;
        } catch (err) {
          // the reaper or the operator destroyed it since the snapshot: gone, as a moment later
          if (isNotFound(err)) continue;
          throw err;
        }
        rows.push({ name, klass: q.klass, removed: markerTime(q.tags)?.toISOString() ?? null, bytes });
      }
      return { tombstones: rows };
    },
  };
}

export interface RestoreInput {
  readonly name: string;
}

async function freshTags(qubesd: Qubesd, name: string): Promise<Set<string> | null> {
  try {
    return new Set(await qubesd.tags(name));
  } catch (err) {
    if (isNotFound(err)) return null;
    throw err;
  }
}

export function tombstoneRestoreService(deps: WriteDeps): ServiceSpec<RestoreInput> {
  return {
    operation: 'tombstone.restore',
    changesState: true,
    parse(argument, payload) {
      return isQubeName(argument) && payload.length === 0 ? { name: argument } : null;
    },
    // a tombstone is never visible: admits stands in for the runner's visibility check
    targets: () => [],
    named: (input) => [input.name],
    admits(input, snapshot, principal, scope) {
      const q = snapshot.any(input.name);
      return q && q.klass !== 'AdminVM' && ownTombstone(q.tags, scope, principal) ? null : 'not a tombstone of this principal';
    },
    async handle({ input, qubesd, principal }): Promise<{ name: string; tier: Tier }> {
      const settings = deps.settings();
      const scope = settings.scope;
      if (settings.poolCap === null || settings.privateCap === null) throw new ActionableError('budget_unset', 'no disk budget is set, so nothing can be restored: ask the operator');
      const lock = await takeBudgetLock(deps);
      if (!lock) throw new ServiceRefusal('budget lock busy');
      try {
        // a principal removed while this waited must not get a qube back: its umbrella and owner tag would outlive it
        if (!isInstalledPrincipal(deps.root, principal)) throw new ServiceRefusal('principal removed meanwhile');
        await deps.fault?.('restore-locked');
        // read again under the lock: the reaper, the operator or another restore may have acted since the snapshot
        const now = await freshTags(qubesd, input.name);
        if (!now || !ownTombstone(now, scope, principal)) throw new ServiceRefusal('no longer a tombstone of this principal');
        const held = await footprint(qubesd, input.name);
        if (!withinCaps(settings, await used(qubesd, settings, ownerTag(principal), input.name), held)) {
          throw new ActionableError('over_budget', 'the disk budget has no room to restore this qube');
        }
        // what a new qube gets (the birth ceiling): never more than the full tier its remove needed
        const tier = settings.birthCeiling;
        await reinstate(qubesd, settings, input.name, tier, deps.now());
        return { name: input.name, tier };
      } finally {
        await lock.release();
      }
    },
  };
}
