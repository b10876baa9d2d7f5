/**
 * qmcp.Remove+QUBE (full tier): never destroys data. The qube becomes a
 * tombstone, invisible and still counted in the budget, until the operator
 * restores it or the reaper's retention passes. Auto-cleanup disposables
 * are the exception: Qubes removes them for real once halted. A lapsed
 * lease ends a qube by the same path (leases/expire.ts). It runs under the
 * budget lock, which `qmcp dom0 principal remove` holds too: a remove either
 * ends before that reads the principal's qubes, or finds the principal gone.
 */
import { isQubeName } from '../../shared/names.js';
import { ownerTag } from '../create/tags.js';
import { isTombstoneTag } from '../service/config.js';
import type { WriteDeps } from '../create/deps.js';
import { takeBudgetLock } from '../create/lock.js';
import { isInstalledPrincipal } from '../create/settings.js';
import type { WriteSettings } from '../create/settings.js';
import type { Qubesd } from '../qubesd.js';
import { entomb, halt } from '../tombstones/entomb.js';
import { usersOf } from '../tombstones/users.js';
import { ActionableError, ServiceRefusal } from '../service/refusal.js';
import type { HandlerContext, ServiceSpec } from '../service/run.js';

export interface RemoveInput {
  readonly qube: string;
}

export function removeService(deps: WriteDeps): ServiceSpec<RemoveInput> {
  return {
    operation: 'remove',
    changesState: true,
    parse(argument, payload) {
      if (!isQubeName(argument) || payload.length !== 0) return null;
      return { qube: argument };
    },
    targets: (i) => [{ name: i.qube, tier: 'full' }],
    async handle(ctx) {
      const settings = deps.settings();
      const lock = await takeBudgetLock(deps);
      if (!lock) throw new ServiceRefusal('budget lock busy');
      try {
        // a principal removed while this waited must not get a tombstone: its owner tag would outlive it
        if (!isInstalledPrincipal(deps.root, ctx.principal)) throw new ServiceRefusal('principal removed meanwhile');
        await deps.fault?.('remove-locked');
        return await removeLocked(ctx, settings, deps.now());
      } finally {
        await lock.release();
      }
    },
  };
}

/** The remove's work, under the budget lock. */
async function removeLocked(ctx: HandlerContext<RemoveInput>, settings: WriteSettings, now: Date): Promise<{ name: string; removed: true }> {
  const { input, qubesd, snapshot, principal } = ctx;
  const target = ctx.targets[0];
  if (!target) throw new Error('no target');
  if (await isAutoCleanup(qubesd, target)) {
    await retire(qubesd, settings, principal, target, now);
    return { name: input.qube, removed: true };
  }
  const users = await usersOf(qubesd, target.name);
  if (users.length > 0) {
    // Telling is fine only when every user is in the agent's world: one it sees, or its own tombstone.
    const owner = ownerTag(principal);
    const ownTomb = (u: string): boolean => {
      const q = snapshot.any(u);
      return q !== undefined && !snapshot.visible(u) && q.tags.has(owner) && [...q.tags].some(isTombstoneTag);
    };
    if (users.every((u) => snapshot.visible(u) || ownTomb(u))) {
      const seen = users.filter((u) => snapshot.visible(u));
      const tombs = users.length - seen.length;
      const by = [...seen, ...(tombs ? [`${tombs} removed qube(s) kept as tombstones until the operator restores or reaps them`] : [])];
      throw new ActionableError('in_use', `qube is in use by ${by.join(', ')}`);
    }
    throw new ServiceRefusal('in use by a qube outside the agent\'s world');
  }
  await retire(qubesd, settings, principal, target, now);
  return { name: input.qube, removed: true };
}

async function isAutoCleanup(qubesd: Qubesd, target: { name: string; klass: string }): Promise<boolean> {
  return target.klass === 'DispVM' && (await qubesd.property(target.name, 'auto_cleanup')).value === 'True';
}

/**
 * Ends a qube no other qube uses, as a remove does: a tombstone, or for an
 * auto-cleanup disposable the removal Qubes makes at its halt.
 */
export async function retire(qubesd: Qubesd, settings: WriteSettings, principal: string, target: { name: string; klass: string }, now: Date): Promise<void> {
  if (await isAutoCleanup(qubesd, target)) {
    await halt(qubesd, target.name).catch(() => undefined);
    // Qubes removes it at shutdown; one that never ran is removed here.
    if ((await qubesd.list()).has(target.name)) await qubesd.call('admin.vm.Remove', target.name);
    return;
  }
  await entomb(qubesd, settings, principal, target.name, now);
}
