/**
 * qmcp.List: the visible qubes with allowlisted columns, in name order, never
 * dom0; and the names of the sinks the agent may push to, which are in its
 * world (SPEC §4.1) but not visible: nothing else of them is told.
 */
import type { ServiceSpec } from '../service/run.js';
import { propertyJson, redactRef } from './redact.js';
import type { JsonValue } from './redact.js';
import { allProperties } from './reads.js';
import { parseNothing } from './shapes.js';

export interface ListRow {
  readonly name: string;
  readonly class: string;
  readonly state: string;
  readonly label: JsonValue;
  readonly template: string | null;
  readonly netvm: string | null;
}

/** Property reads in flight at once: enough to hide qubesd's per-call latency, few enough to be gentle. */
const READ_CONCURRENCY = 16;

/** `fn` over `items` with at most `limit` calls at once; results in input order. */
async function mapBounded<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

export const listService: ServiceSpec<Record<string, never>> = {
  operation: 'list',
  changesState: false,
  parse: parseNothing,
  targets: () => [],
  async handle({ qubesd, snapshot }): Promise<{ qubes: ListRow[]; sinks: string[] }> {
    const qubes = await mapBounded(snapshot.allVisible(), READ_CONCURRENCY, async (q): Promise<ListRow> => {
      const props = await allProperties(qubesd, q.name);
      const ref = (key: string): string | null => redactRef(snapshot, props.get(key)?.text ?? '');
      const label = props.get('label');
      return {
        name: q.name,
        class: q.klass,
        state: q.state,
        label: label ? propertyJson(snapshot, label) : null,
        template: ref('template'),
        netvm: ref('netvm'),
      };
    });
    return { qubes, sinks: snapshot.allSinks().map((q) => q.name) };
  },
};
