/** The small simulated host the installer's and the operator's tests start: a template, principal qubes, seeded qubes. */
import { startSimHost } from '../../src/sim/host.js';
import type { SimHost } from '../../src/sim/host.js';

/**
 * A host in DIR with the template `tpl`, the principal qube mcp-control and
 * OTHER_PRINCIPALS' qubes on it, and an AppVM on tpl for each of QUBES
 * (name to tags).
 */
export function startSmallHost(dir: string, qubes: Readonly<Record<string, string[]>>, otherPrincipals: readonly string[] = []): Promise<SimHost> {
  return startSimHost({
    dir,
    fleet: {
      qubes: [
        { name: 'tpl', klass: 'TemplateVM', label: 'black' },
        ...['mcp-control', ...otherPrincipals].map((name) => ({ name, klass: 'AppVM' as const, template: 'tpl', label: 'purple' })),
        ...Object.entries(qubes).map(([name, tags]) => ({ name, klass: 'AppVM' as const, template: 'tpl', label: 'red', tags })),
      ],
    },
  });
}
