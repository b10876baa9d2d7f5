/** qmcp.PoolFigures: the umbrella's persistent footprint against the operator's cap, nothing about the pool. */
import type { ServiceSpec } from '../service/run.js';
import { OWNER_PREFIX, isTombstoneTag } from '../service/config.js';
import type { QubeFacts } from '../service/snapshot.js';
import { volumeSize } from './reads.js';
import { parseNothing } from './shapes.js';

export interface PoolFigures {
  readonly used: number;
  readonly cap: number;
  readonly headroom: number;
}

/** Root persists only where the qube owns it. */
function persistentVolumes(q: QubeFacts): string[] {
  return q.klass === 'TemplateVM' || q.klass === 'StandaloneVM' ? ['private', 'root'] : ['private'];
}

function isTombstoneOf(q: QubeFacts, principal: string): boolean {
  return q.tags.has(OWNER_PREFIX + principal) && [...q.tags].some(isTombstoneTag);
}

/** `cap` null (unset or malformed) shows as no room at all. */
export function poolFiguresService(poolCap: number | null): ServiceSpec<Record<string, never>> {
  return {
    operation: 'pool.figures',
    changesState: false,
    parse: parseNothing,
    targets: () => [],
    async handle({ qubesd, snapshot, principal }): Promise<PoolFigures> {
      const counted: QubeFacts[] = snapshot.allVisible();
      // the names come from a fresh list; the tags that decide come from the snapshot
      for (const name of [...(await qubesd.list()).keys()].sort()) {
        const q = snapshot.any(name);
        if (q && !snapshot.visible(name) && isTombstoneOf(q, principal)) counted.push(q);
      }
      let used = 0;
      for (const q of counted) {
        for (const volume of persistentVolumes(q)) used += await volumeSize(qubesd, q.name, volume);
      }
      if (!Number.isSafeInteger(used)) throw new Error('footprint overflow');
      const cap = poolCap ?? 0;
      return { used, cap, headroom: Math.max(0, cap - used) };
    },
  };
}
