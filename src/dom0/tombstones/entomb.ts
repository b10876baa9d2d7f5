/**
 * Turns a qube into a tombstone (SPEC §4.9): halted, autostart cleared,
 * marked, its umbrella and elevation tags gone, and read back. The hiding
 * tag goes on right after the first halt and comes off last, so from then
 * on no service and no policy line reaches the qube, and a failure half-way
 * leaves it hidden with the umbrella still on: the reaper will not touch it
 * and doctor reports it. With the hiding tag comes qubesd's own start hold,
 * so a start decided on an older view of the machine fails in qubesd
 * instead of running a tombstone; restore lifts it.
 */
import type { Qubesd } from '../qubesd.js';
import { ownerTag } from '../create/tags.js';
import type { WriteSettings } from '../create/settings.js';
import { START_HOLD, TOMBSTONE_TAG, datedMarker } from './markers.js';

async function halted(qubesd: Qubesd, qube: string): Promise<boolean> {
  return /power_state=Halted/.test(await qubesd.call('admin.vm.CurrentState', qube));
}

export async function halt(qubesd: Qubesd, qube: string): Promise<void> {
  if (await halted(qubesd, qube)) return;
  try {
    await qubesd.call('admin.vm.Shutdown', qube, 'force+wait');
  } catch {
    // Kill below if it is still up.
  }
  if (!(await halted(qubesd, qube))) await qubesd.call('admin.vm.Kill', qube);
  if (!(await halted(qubesd, qube))) throw new Error('qube did not halt');
}

export async function entomb(qubesd: Qubesd, settings: WriteSettings, principal: string, qube: string, now: Date): Promise<void> {
  await halt(qubesd, qube);
  await qubesd.call('admin.vm.tag.Set', qube, settings.incomplete);
  const marker = datedMarker(now);
  let held = false;
  try {
    held = await holdStart(qubesd, qube);
    // A start that slipped in before the hold is undone here; none can follow it.
    await halt(qubesd, qube);
    await qubesd.call('admin.vm.property.Set', qube, 'autostart', 'False');
    await qubesd.call('admin.vm.tag.Set', qube, TOMBSTONE_TAG);
    await qubesd.call('admin.vm.tag.Set', qube, marker);
  } catch (err) {
    // Not a tombstone yet: show it again, so the failed remove changed nothing the agent sees.
    await qubesd.call('admin.vm.tag.Remove', qube, TOMBSTONE_TAG).catch(() => undefined);
    if (held) await qubesd.call('admin.vm.feature.Remove', qube, START_HOLD.feature).catch(() => undefined);
    await qubesd.call('admin.vm.tag.Remove', qube, settings.incomplete).catch(() => undefined);
    throw err;
  }
  // The owner tag makes it count in this principal's budget figures.
  await qubesd.call('admin.vm.tag.Set', qube, ownerTag(principal));
  const { umbrella, elevation } = settings.scope;
  const tags = new Set(await qubesd.tags(qube));
  for (const t of [elevation.exec, elevation.net, elevation.full, umbrella]) {
    if (tags.has(t)) await qubesd.call('admin.vm.tag.Remove', qube, t);
  }
  const back = new Set(await qubesd.tags(qube));
  const controlled = [umbrella, elevation.exec, elevation.net, elevation.full];
  if (controlled.some((t) => back.has(t)) || !back.has(marker) || !back.has(TOMBSTONE_TAG)) throw new Error('tombstone tags read back differ');
  if ((await qubesd.property(qube, 'autostart')).value !== 'False') throw new Error('autostart read back set');
  if (!(await halted(qubesd, qube))) throw new Error('tombstone running');
  // Outside the umbrella now, so it stays invisible without the hiding tag.
  await qubesd.call('admin.vm.tag.Remove', qube, settings.incomplete);
  // Checked after the last tag change: a start that got past the hold would be undone here.
  await halt(qubesd, qube);
}

/**
 * Sets qubesd's start hold unless the qube already carries one (the
 * operator's, say: then it is left as it is). Resolves whether it set it.
 */
async function holdStart(qubesd: Qubesd, qube: string): Promise<boolean> {
  const present = (await qubesd.call('admin.vm.feature.List', qube)).split('\n').includes(START_HOLD.feature);
  if (present) return false;
  await qubesd.call('admin.vm.feature.Set', qube, START_HOLD.feature, START_HOLD.value);
  return true;
}

/** Lifts the start hold if it is the one entombing set. */
export async function releaseStart(qubesd: Qubesd, qube: string): Promise<void> {
  const present = (await qubesd.call('admin.vm.feature.List', qube)).split('\n').includes(START_HOLD.feature);
  if (present && (await qubesd.call('admin.vm.feature.Get', qube, START_HOLD.feature)) === START_HOLD.value) {
    await qubesd.call('admin.vm.feature.Remove', qube, START_HOLD.feature);
  }
}
