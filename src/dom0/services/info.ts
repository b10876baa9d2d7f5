/** qmcp.Info+QUBE: the allowlisted properties of one visible qube, redacted (SPEC §4a). */
import type { ServiceSpec } from '../service/run.js';
import { propertyJson } from './redact.js';
import type { JsonValue } from './redact.js';
import { allProperties, powerState } from './reads.js';
import type { PropertyValue } from './reads.js';
import { parseQubeArgument } from './shapes.js';
import { leaseOf } from '../leases/feature.js';

/** Readable properties, in answer order; each appears only where the class has it. Never `ip`. */
export const READABLE_PROPERTIES: readonly string[] = [
  'name',
  'klass',
  'label',
  'template',
  'netvm',
  'default_dispvm',
  'guivm',
  'audiovm',
  'management_dispvm',
  'memory',
  'maxmem',
  'vcpus',
  'provides_network',
  'template_for_dispvms',
  'auto_cleanup',
  'virt_mode',
  'kernel',
  'updateable',
  'include_in_backups',
  'autostart',
];

/** The qubes the readable properties name (their `vm`-typed values). */
function referents(props: ReadonlyMap<string, PropertyValue>): string[] {
  return READABLE_PROPERTIES.map((k) => props.get(k)).flatMap((p) => (p?.type === 'vm' && p.text !== '' ? [p.text] : []));
}

export function infoService(umbrellaTag: string): ServiceSpec<{ name: string }> {
  return {
    operation: 'info',
    changesState: false,
    parse: parseQubeArgument,
    targets: (input) => [{ name: input.name, tier: 'read' }],
    reads: 'named',
    async handle({ qubesd, snapshot, targets }): Promise<Record<string, JsonValue | string[]>> {
      const q = targets[0];
      if (!q) throw new Error('no target');
      const props = await allProperties(qubesd, q.name);
      // the qubes the answer names, each read to be shown or redacted: one read per property, so
      // how many are read depends on this qube's properties, never on whether two name one qube
      await snapshot.include(qubesd, referents(props));
      const out: Record<string, JsonValue | string[]> = {};
      for (const key of READABLE_PROPERTIES) {
        const p = props.get(key);
        if (p) out[key] = propertyJson(snapshot, p);
      }
      out['state'] = await powerState(qubesd, q.name);
      // dom0 wrote it; null: the qube does not expire
      out['lease_expires'] = await leaseOf(qubesd, q.name);
      // only the umbrella tag is ever shown; tiers are learnt from refusals
      out['tags'] = q.tags.has(umbrellaTag) ? [umbrellaTag] : [];
      return out;
    },
  };
}
