/** The umbrella's persistent disk footprint against the operator's caps (SPEC §4.10). */
import type { Qubesd } from '../qubesd.js';
import { isTombstoneTag } from '../service/config.js';
import type { WriteSettings } from './settings.js';

export interface Footprint {
  /** Bytes of every volume saved on stop (private; root where it persists). */
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

/** One qube's persistent footprint, from its volumes' own records. */
export async function footprint(qubesd: Qubesd, qube: string): Promise<Footprint> {
  let total = 0;
  let privateSize = 0;
  const volumes = (await qubesd.call('admin.vm.volume.List', qube)).split('\n').filter(Boolean);
  for (const v of volumes) {
    const info = parseInfo(await qubesd.call('admin.vm.volume.Info', qube, v));
    if (v === 'private') privateSize = size(info);
    if (info.get('save_on_stop') === 'True') total += size(info);
  }
  return { total, privateSize };
}

/** Whether a qube counts against the principal's budget: in the umbrella, or its own tombstone. */
export function counted(tags: ReadonlySet<string>, settings: WriteSettings, owner: string): boolean {
  if (tags.has(settings.scope.umbrella)) return true;
  return tags.has(owner) && [...tags].some(isTombstoneTag);
}

/** Current use: the footprint of every counted qube, except `skip` (a qube being made). */
export async function used(qubesd: Qubesd, settings: WriteSettings, owner: string, skip?: string): Promise<number> {
  let sum = 0;
  for (const [name, { klass }] of await qubesd.list()) {
    if (klass === 'AdminVM' || name === skip) continue;
    if (!counted(new Set(await qubesd.tags(name)), settings, owner)) continue;
    sum += (await footprint(qubesd, name)).total;
  }
  return sum;
}

/** A projected use equal to the cap is allowed; anything unreadable is not. */
export function withinCaps(settings: WriteSettings, current: number, added: Footprint): boolean {
  const { poolCap, privateCap } = settings;
  if (poolCap === null || privateCap === null) return false;
  if (!Number.isSafeInteger(current + added.total)) return false;
  return added.privateSize <= privateCap && current + added.total <= poolCap;
}
