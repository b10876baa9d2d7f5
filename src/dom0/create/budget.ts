/** The umbrella's persistent disk footprint against the operator's caps (SPEC §4.10). */
import type { Qubesd } from '../qubesd.js';
import { eachQube } from '../qubesd.js';
import { isTombstoneTag } from '../service/config.js';
import type { ScopeRules } from '../service/snapshot.js';
import type { WriteSettings } from './settings.js';

export interface Footprint {
  /** Bytes of every volume saved on stop (private; root where it persists), and of the revisions it keeps beyond one. */
  readonly total: number;
  readonly privateSize: number;
}

function parseInfo(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) out.set(line.slice(0, eq), line.slice(eq + 1));
  }
  return out;
}

function size(info: Map<string, string>): number {
  const v = info.get('size') ?? '';
  const n = /^[0-9]{1,16}$/.test(v) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n)) throw new Error('volume size unreadable');
  return n;
}

/**
 * Revisions a volume keeps beyond the one Qubes keeps by default (a
 * checkpoint raises it): each can hold the whole volume.
 */
function extraRevisions(info: Map<string, string>): number {
  const v = info.get('revisions_to_keep') ?? '';
  return /^[0-9]{1,4}$/.test(v) ? Math.max(0, Number(v) - 1) : 0;
}

/** One qube's persistent footprint, from its volumes' own records. */
export async function footprint(qubesd: Qubesd, qube: string): Promise<Footprint> {
  let total = 0;
  let privateSize = 0;
  const volumes = (await qubesd.call('admin.vm.volume.List', qube)).split('\n').filter(Boolean);
  for (const v of volumes) {
    const info = parseInfo(await qubesd.call('admin.vm.volume.Info', qube, v));
    if (v === 'private') privateSize = size(info);
    if (info.get('save_on_stop') === 'True') total += size(info) * (1 + extraRevisions(info));
  }
  return { total, privateSize };
}

/**
 * Whether a qube counts against the principal's budget: in the umbrella (a
 * hand-made umbrella+sink hybrid is outside the agent's world, so it counts
 * nowhere), or one of its own tombstones. pool_figures counts by the same rule.
 */
export function counted(tags: ReadonlySet<string>, scope: ScopeRules, owner: string): boolean {
  if (tags.has(scope.sink)) return false;
  if (tags.has(scope.umbrella)) return true;
  return tags.has(owner) && [...tags].some(isTombstoneTag);
}

/** The summed footprint of the named qubes; one that vanished meanwhile adds nothing. */
export async function footprintOf(qubesd: Qubesd, names: readonly string[]): Promise<number> {
  let sum = 0;
  for (const f of (await eachQube(names, (n) => footprint(qubesd, n))).values()) sum += f.total;
  if (!Number.isSafeInteger(sum)) throw new Error('footprint overflow');
  return sum;
}

/** Current use: the footprint of every counted qube, except `skip` (a qube being made). */
export async function used(qubesd: Qubesd, settings: WriteSettings, owner: string, skip?: string): Promise<number> {
  const names = [...(await qubesd.list())].filter(([name, { klass }]) => klass !== 'AdminVM' && name !== skip).map(([n]) => n);
  const tags = await eachQube(names, (n) => qubesd.tags(n));
  return footprintOf(
    qubesd,
    [...tags].filter(([, t]) => counted(new Set(t), settings.scope, owner)).map(([n]) => n),
  );
}

/** A projected use equal to the cap is allowed; anything unreadable is not. */
export function withinCaps(settings: WriteSettings, current: number, added: Footprint): boolean {
  const { poolCap, privateCap } = settings;
  if (poolCap === null || privateCap === null) return false;
  if (!Number.isSafeInteger(current + added.total)) return false;
  return added.privateSize <= privateCap && current + added.total <= poolCap;
}
