/**
 * What must hold before install touches anything: a new enough Node, each
 * principal qube present, and no umbrella+sink hybrid (SPEC §8) in any
 * principal's world. The qube
 * checks go through qubesd; under a --root other than `/` with no qubesd
 * answering they are skipped, and the report says so.
 */
import type { Settings } from '../../shared/model/index.js';
import { QubesdUnreachable, readQubes } from '../operator/facts.js';

export const MIN_NODE_MAJOR = 20;

export interface PreconditionResult {
  /** Each a precise reason; any one refuses the install. */
  readonly refusals: string[];
  readonly notes: string[];
}

export async function checkPreconditions(o: { root: string; principals: readonly Settings[]; qubesdSocket: string; nodeVersion?: string }): Promise<PreconditionResult> {
  const refusals: string[] = [];
  const notes: string[] = [];
  const version = o.nodeVersion ?? process.versions.node;
  const major = Number(/^v?(\d+)\./.exec(version)?.[1] ?? 0);
  if (major < MIN_NODE_MAJOR) refusals.push(`Node ${version} is too old: the dom0 services need Node ${MIN_NODE_MAJOR} or newer`);

  let qubes;
  try {
    qubes = await readQubes(o.qubesdSocket, false);
  } catch (err) {
    if (!(err instanceof QubesdUnreachable)) throw err;
    if (o.root === '/') refusals.push(`${err.message}: cannot check the principal qube and hybrids`);
    else notes.push(`${err.message}: the principal and hybrid checks were skipped`);
    return { refusals, notes };
  }
  for (const { principal, tags } of o.principals) {
    if (!qubes.has(principal)) refusals.push(`principal qube ${principal} does not exist (create it, or set "principal" in the settings)`);
    const hybrids = [...qubes.values()].filter((q) => q.tags.has(tags.umbrella) && q.tags.has(tags.sink)).map((q) => q.name);
    if (hybrids.length > 0) {
      refusals.push(`qubes carry both ${tags.umbrella} and ${tags.sink}: ${hybrids.join(', ')} (a sink never joins the umbrella: remove one of the tags)`);
    }
    const elevations = [tags.exec, tags.net, tags.full];
    const stray = [...qubes.values()].filter((q) => !q.tags.has(tags.umbrella) && elevations.some((e) => q.tags.has(e))).map((q) => q.name);
    if (stray.length > 0) notes.push(`qubes carry an elevation tag without ${tags.umbrella}: ${stray.join(', ')} (the policy lets the agent reach them; doctor fails until the tag goes)`);
  }
  return { refusals, notes };
}
