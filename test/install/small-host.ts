/** The small simulated host the installer's and the operator's tests start: a template, principal qubes, seeded qubes. */
import type { FleetQube } from '../../src/sim/fleet.js';
import { startSimHost } from '../../src/sim/host.js';
import type { SimHost } from '../../src/sim/host.js';

/**
 * A host in DIR with the template `tpl`, the principal qube mcp-control,
 * OTHER_PRINCIPALS' qubes and EXTRA on it, and a qube for each of QUBES
 * (name to tags): a TemplateVM when its name ends in `-tpl`, else an AppVM on tpl.
 */
export function startSmallHost(dir: string, qubes: Readonly<Record<string, string[]>>, otherPrincipals: readonly string[] = [], extra: readonly FleetQube[] = []): Promise<SimHost> {
  return startSimHost({
    dir,
    fleet: {
      qubes: [
        { name: 'tpl', klass: 'TemplateVM', label: 'black' },
        ...['mcp-control', ...otherPrincipals].map((name) => ({ name, klass: 'AppVM' as const, template: 'tpl', label: 'purple' })),
        ...extra,
        ...Object.entries(qubes).map(([name, tags]) =>
          name.endsWith('-tpl') ? { name, klass: 'TemplateVM' as const, label: 'black', tags } : { name, klass: 'AppVM' as const, template: 'tpl', label: 'red', tags },
        ),
      ],
    },
  });
}
