/** qmcp.List: the visible qubes with allowlisted columns, in name order, never dom0. */
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

export const listService: ServiceSpec<Record<string, never>> = {
  operation: 'list',
  changesState: false,
  parse: parseNothing,
  targets: () => [],
  async handle({ qubesd, snapshot }): Promise<{ qubes: ListRow[] }> {
    const qubes: ListRow[] = [];
    for (const q of snapshot.allVisible()) {
      const props = await allProperties(qubesd, q.name);
      const ref = (key: string): string | null => redactRef(snapshot, props.get(key)?.text ?? '');
      const label = props.get('label');
      qubes.push({
        name: q.name,
        class: q.klass,
        state: q.state,
        label: label ? propertyJson(snapshot, label) : null,
        template: ref('template'),
        netvm: ref('netvm'),
      });
    }
    return { qubes };
  },
};
