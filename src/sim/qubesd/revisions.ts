/**
 * Volume revisions as qubesd's file-reflink driver keeps them
 * (qubes/storage/reflink.py): a revision is made only when a running
 * volume that is saved on stop is committed at the qube's stop, and holds
 * the content the volume had before that run; the oldest are pruned past
 * revisions_to_keep. A revert, on a cleanly stopped volume only, first keeps
 * the current content as a new revision, then makes the chosen revision the
 * volume's content (the revision is used up). Revision ids count up from 1.
 */
import type { RevisionState, VmState, VolumeState } from './state.js';

/** Where the storage behind the volumes follows a revision change (the sandbox layer's images). */
export interface RevisionHooks {
  /** Keeps the volume's current content as revision `id`. */
  keepRevision?(vm: string, volume: string, id: string): Promise<void> | void;
  dropRevision?(vm: string, volume: string, id: string): Promise<void> | void;
  /** Makes revision `id` the volume's content, using it up. */
  useRevision?(vm: string, volume: string, id: string): Promise<void> | void;
}

/** Whether the volume's content survives a stop (save_on_stop). */
export function savesOnStop(vm: VmState, volume: string): boolean {
  return (volume === 'private' && vm.klass !== 'DispVM') || (volume === 'root' && (vm.klass === 'TemplateVM' || vm.klass === 'StandaloneVM'));
}

/** A snapshot of its template's volume (snap_on_start). */
export function snapsOnStart(vm: VmState, volume: string): boolean {
  return (volume === 'root' && (vm.klass === 'AppVM' || vm.klass === 'DispVM')) || (volume === 'private' && vm.klass === 'DispVM');
}

/** revisions_to_keep: as set, else the pool's 1, and 0 where nothing is ever committed. */
export function keepOf(vm: VmState, volume: string): number {
  const set = vm.volumes[volume]?.revisions_to_keep;
  if (set !== undefined) return set;
  return volume === 'kernel' || volume === 'volatile' || snapsOnStart(vm, volume) ? 0 : 1;
}

/** qubes.storage.isodate. */
export function isodate(at: Date): string {
  return at.toISOString().slice(0, 19);
}

/** The ids oldest first, as admin.vm.volume.ListSnapshots sorts them (by timestamp; the ids break ties as the driver lists them). */
export function listRevisions(vol: VolumeState | undefined): string[] {
  return [...(vol?.revisions ?? [])].sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : Number(a.id) - Number(b.id))).map((r) => r.id);
}

function nextId(vol: VolumeState): string {
  const ids = (vol.revisions ?? []).map((r) => Number(r.id));
  return String(ids.length ? Math.max(...ids) + 1 : 1);
}

/** Adds a revision holding the current content, unless the volume keeps none. */
async function addRevision(vm: VmState, volume: string, vol: VolumeState, now: Date, hooks: RevisionHooks): Promise<void> {
  if (keepOf(vm, volume) === 0) return;
  const id = nextId(vol);
  await hooks.keepRevision?.(vm.name, volume, id);
  (vol.revisions ??= []).push({ id, at: vol.committed ?? isodate(now), made: isodate(now) });
}

async function prune(vm: VmState, volume: string, vol: VolumeState, hooks: RevisionHooks): Promise<void> {
  const keep = Math.max(0, keepOf(vm, volume));
  const all = vol.revisions ?? [];
  const drop = all.slice(0, Math.max(0, all.length - keep));
  for (const r of drop) await hooks.dropRevision?.(vm.name, volume, r.id);
  vol.revisions = all.slice(drop.length);
}

/**
 * A stop commits each volume saved on stop: the content it had before the
 * run becomes a revision (with revisions_to_keep -1, snapshots disabled,
 * none), the oldest are pruned. Call before the new content replaces it.
 */
export async function commitAtStop(vm: VmState, now: Date, hooks: RevisionHooks): Promise<void> {
  for (const [volume, vol] of Object.entries(vm.volumes)) {
    if (!savesOnStop(vm, volume)) continue;
    if (keepOf(vm, volume) === -1) {
      await prune(vm, volume, vol, hooks);
    } else {
      await addRevision(vm, volume, vol, now, hooks);
      await prune(vm, volume, vol, hooks);
    }
    vol.committed = isodate(now);
  }
}

/** The revert itself, once the revision is known to exist and the volume is cleanly stopped. */
export async function revert(vm: VmState, volume: string, id: string, now: Date, hooks: RevisionHooks): Promise<void> {
  const vol = vm.volumes[volume];
  const chosen = vol?.revisions?.find((r) => r.id === id);
  if (!vol || !chosen) return;
  await addRevision(vm, volume, vol, now, hooks);
  await hooks.useRevision?.(vm.name, volume, id);
  vol.revisions = (vol.revisions ?? []).filter((r) => r !== chosen);
  // the revision's file becomes the volume: its time is when the revision was made
  vol.committed = chosen.made ?? chosen.at;
}

export type { RevisionState };
