/**
 * What the operator of a simulated host must know as it starts, said then
 * rather than learnt later from the agent's failing calls.
 */
import { readPrincipalsFile, settingsPath } from '../shared/model/index.js';
import type { SimHost } from '../sim/host.js';
import { dom0Root } from '../sim/host.js';
import { BWRAP_MISSING_MESSAGE } from '../sim/sandbox/index.js';

export function hostWarnings(host: SimHost): string[] {
  const out: string[] = [];
  if (!host.sandboxes.available) out.push(`${BWRAP_MISSING_MESSAGE}. Until then nothing runs inside a qube: qube_run and file copies fail`);
  if (host.install !== null) {
    const path = settingsPath(dom0Root(host.dir));
    const { list } = readPrincipalsFile(path).principals;
    for (const s of list) {
      const caps = (['poolCapBytes', 'privateCapBytes'] as const).filter((k) => s[k] === null);
      const refused = caps.length > 0 ? `${caps.join(' and ')} unset, so every create the agent asks for is refused (it sees no budget)` : undefined;
      const egress = s.egressQube === null ? 'egressQube unset, so creates from templates are refused' : undefined;
      const why = [refused, egress].filter((w) => w !== undefined);
      const whose = list.length > 1 ? ` for ${s.principal}` : '';
      if (why.length > 0) out.push(`the settings in ${path} leave ${why.join('; ')}${whose}. Restart with --settings FILE to set them (docs/capabilities.md lists the settings)`);
    }
  }
  return out;
}
