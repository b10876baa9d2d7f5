/** qmcp.PoolFigures: the umbrella's persistent footprint against the operator's cap, nothing about the pool. */
import { counted, footprintOf } from '../create/budget.js';
import { ownerTag } from '../create/tags.js';
import type { ServiceSpec } from '../service/run.js';
import type { ScopeRules } from '../service/snapshot.js';
import { parseNothing } from './shapes.js';

export interface PoolFigures {
  /** live + tombstoned. */
  readonly used: number;
  /** The qubes the agent sees. */
  readonly live: number;
  /** Its own tombstones, which it can restore or wait for the reaper to destroy. */
  readonly tombstoned: number;
  readonly cap: number;
  readonly headroom: number;
}

/** `cap` null (unset or malformed) shows as no room at all. What counts is what a create's budget check counts. */
export function poolFiguresService(poolCap: number | null, scope: ScopeRules): ServiceSpec<Record<string, never>> {
  return {
    operation: 'pool.figures',
    changesState: false,
    parse: parseNothing,
    targets: () => [],
    async handle({ qubesd, snapshot, principal }): Promise<PoolFigures> {
      const owner = ownerTag(principal);
      const qubes = snapshot.allQubes().filter((q) => q.klass !== 'AdminVM' && counted(q.tags, scope, owner));
      // a counted qube without the umbrella is one of its own tombstones (counted()'s second clause)
      const live = await footprintOf(qubesd, qubes.filter((q) => q.tags.has(scope.umbrella)).map((q) => q.name));
      const tombstoned = await footprintOf(qubesd, qubes.filter((q) => !q.tags.has(scope.umbrella)).map((q) => q.name));
      const used = live + tombstoned;
      const cap = poolCap ?? 0;
      return { used, live, tombstoned, cap, headroom: Math.max(0, cap - used) };
    },
  };
}
