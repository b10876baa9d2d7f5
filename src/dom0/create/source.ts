/** What a new qube inherits from its source: name checks, egress and default_dispvm (SPEC §4.7). */
import type { Qubesd } from '../qubesd.js';
import { ActionableError, ServiceRefusal } from '../service/refusal.js';
import type { Snapshot } from '../service/snapshot.js';
import type { NetvmChoice } from './input.js';

/** The name must be free; a visible holder may be named, any other holder refuses opaquely. */
export function requireFreeName(snapshot: Snapshot, name: string): void {
  if (snapshot.visible(name)) throw new ActionableError('exists', 'a qube with that name already exists');
  if (snapshot.any(name)) throw new ServiceRefusal('name held outside the agent\'s world');
}

/** A property naming a qube, as its effective value; null for none. */
export async function vmValue(qubesd: Qubesd, qube: string, prop: string): Promise<string | null> {
  const v = await qubesd.property(qube, prop);
  return v.value === '' ? null : v.value;
}

/**
 * A clone or disposable keeps its source's network path only where that
 * path is the agent's egress qube (inside the umbrella) or none. A source on
 * any other netvm (the operator's, or a global default) gives a child on the
 * egress qube, or offline when there is no visible egress qube.
 */
export async function inheritedNetvm(
  qubesd: Qubesd,
  snapshot: Snapshot,
  egress: string | null,
  source: string,
  choice: NetvmChoice,
): Promise<string | null> {
  if (choice === 'none') return null;
  if ((await vmValue(qubesd, source, 'netvm')) === null) return null;
  return egress !== null && snapshot.visible(egress) ? egress : null;
}

/** A qube from a template takes the principal's egress qube, which must itself be visible. */
export function egressNetvm(snapshot: Snapshot, egress: string | null, choice: NetvmChoice): string | null {
  // the operator's setting, the same whatever else the machine holds
  if (egress === null) throw new ActionableError('no_egress', 'no egress qube is set, so no qube can be made from a template: ask the operator');
  if (!snapshot.visible(egress)) throw new ServiceRefusal('egress qube not in the umbrella');
  return choice === 'none' ? null : egress;
}

/** default_dispvm set explicitly: the source's, when the agent can see it; otherwise none. */
export async function inheritedDefaultDispvm(qubesd: Qubesd, snapshot: Snapshot, source: string): Promise<string | null> {
  const v = await vmValue(qubesd, source, 'default_dispvm');
  return v !== null && snapshot.visible(v) ? v : null;
}

export async function sourceLabel(qubesd: Qubesd, source: string): Promise<string> {
  return (await qubesd.property(source, 'label')).value;
}
