/**
 * qmcp.Checkpoint+QUBE and qmcp.Revert+QUBE (full tier): checkpoints of a
 * qube's private volume on Qubes' own volume revisions (docs/checkpoints.md).
 * qubesd makes a revision only when a running volume is committed at its
 * stop, holding what the volume held before that run; nothing makes one on
 * demand. So a checkpoint is taken on a halted qube and is the revision its
 * next stop makes. The checkpoint records, in a feature only dom0 sets, the
 * newest revision at that moment and the revisions_to_keep it found, and
 * keeps at least two revisions (the extra one counted in the budget), so
 * the run after it does not prune it. A revert finds that revision again,
 * or says why it cannot, and has qubesd revert to it.
 */
import type { WriteDeps } from '../create/deps.js';
import { used } from '../create/budget.js';
import { takeBudgetLock } from '../create/lock.js';
import { ownerTag } from '../create/tags.js';
import { QubesdError } from '../qubesd.js';
import type { Qubesd } from '../qubesd.js';
import { ActionableError, ServiceRefusal } from '../service/refusal.js';
import type { HandlerContext, ServiceSpec } from '../service/run.js';
import type { QubeFacts } from '../service/snapshot.js';
import { powerState } from './reads.js';
import { parseQubeArgument } from './shapes.js';

/** The feature holding a qube's checkpoint: `ANCHOR KEEP`, ANCHOR the newest revision then (or `-`), KEEP the revisions_to_keep found. */
export const CHECKPOINT_FEATURE = 'qmcp-checkpoint';
/** Revisions a checkpointed volume keeps at least: the checkpoint's and the one the next stop adds. */
export const CHECKPOINT_KEEP = 2;
const VOLUME = 'private';

export interface CheckpointMark {
  /** The newest revision when the checkpoint was taken; null when there was none. */
  readonly anchor: string | null;
  /** revisions_to_keep before the checkpoint raised it. */
  readonly keepBefore: number;
}

/** qubesd's revision names: letters, digits and `:-_.` (admin.vm.volume.Revert). */
const REVISION = /^[A-Za-z0-9:_.-]{1,64}$/;

export function formatMark(m: CheckpointMark): string {
  return `${m.anchor ?? '-'} ${m.keepBefore}`;
}

export function parseMark(value: string): CheckpointMark | null {
  const m = /^(\S+) (-1|[0-9]{1,4})$/.exec(value);
  if (!m || (m[1] !== '-' && !REVISION.test(m[1] as string))) return null;
  return { anchor: m[1] === '-' ? null : (m[1] as string), keepBefore: Number(m[2]) };
}

/**
 * The revision that holds the checkpoint, from the revisions listed now
 * (oldest first): the one right after the anchor. Pruning drops the oldest
 * first, so while the anchor is listed nothing after it was dropped. With no
 * anchor the first listed is it only while fewer than revisions_to_keep are
 * kept (none dropped yet). `unchanged`: the qube has not stopped since;
 * `lost`: the revision is gone or cannot be told apart.
 */
export function checkpointRevision(mark: CheckpointMark, revisions: readonly string[], keepNow: number): string | 'unchanged' | 'lost' {
  if (mark.anchor !== null) {
    const at = revisions.indexOf(mark.anchor);
    if (at < 0) return 'lost';
    return revisions[at + 1] ?? 'unchanged';
  }
  if (revisions.length === 0) return 'unchanged';
  const kept = Math.min(Math.max(mark.keepBefore, CHECKPOINT_KEEP), keepNow);
  return revisions.length < kept ? (revisions[0] as string) : 'lost';
}

async function revisionsOf(qubesd: Qubesd, qube: string): Promise<string[]> {
  return (await qubesd.call('admin.vm.volume.ListSnapshots', qube, VOLUME)).split('\n').filter(Boolean);
}

async function volumeFigures(qubesd: Qubesd, qube: string): Promise<{ keep: number; size: number }> {
  const info = new Map((await qubesd.call('admin.vm.volume.Info', qube, VOLUME)).split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] as const));
  const keep = Number(info.get('revisions_to_keep'));
  const size = Number(info.get('size'));
  if (!Number.isSafeInteger(keep) || !Number.isSafeInteger(size)) throw new Error('volume info unreadable');
  return { keep, size };
}

async function markOf(qubesd: Qubesd, qube: string): Promise<string | null> {
  const features = (await qubesd.call('admin.vm.feature.List', qube)).split('\n');
  return features.includes(CHECKPOINT_FEATURE) ? await qubesd.call('admin.vm.feature.Get', qube, CHECKPOINT_FEATURE) : null;
}

/** The checked target, halted, with a private volume that is its own (what both services need). */
async function haltedOwnVolume(ctx: HandlerContext<{ name: string }>): Promise<QubeFacts> {
  const q = ctx.targets[0];
  if (!q) throw new ServiceRefusal('no target');
  if (!(await ctx.snapshot.recheck(ctx.qubesd, q.name, 'full'))) throw new ServiceRefusal('hidden since the snapshot');
  if (q.klass === 'DispVM') throw new ActionableError('no-revisions', "a disposable's private volume is a copy of its template's and keeps no revisions");
  if ((await powerState(ctx.qubesd, q.name)) !== 'Halted') {
    throw new ActionableError('running', 'the qube is running: shut it down first (a checkpoint is the state of a clean stop, and only a stopped volume can be reverted)');
  }
  return q;
}

export function checkpointService(deps: WriteDeps): ServiceSpec<{ name: string }> {
  return {
    operation: 'checkpoint',
    changesState: true,
    parse: parseQubeArgument,
    targets: (input) => [{ name: input.name, tier: 'full' }],
    async handle(ctx): Promise<{ name: string; revisions_to_keep: number }> {
      const { qubesd, principal } = ctx;
      const q = await haltedOwnVolume(ctx);
      const settings = deps.settings();
      if (settings.poolCap === null) throw new ServiceRefusal('caps setting unusable');
      const lock = await takeBudgetLock(deps);
      if (!lock) throw new ServiceRefusal('budget lock busy');
      try {
        const { keep, size } = await volumeFigures(qubesd, q.name);
        // a checkpoint taken again keeps the first one's value to go back to
        const earlier = parseMark((await markOf(qubesd, q.name)) ?? '');
        const keepBefore = earlier?.keepBefore ?? keep;
        const keepSet = Math.max(keep, CHECKPOINT_KEEP);
        if (keepSet > keep) {
          // each revision kept beyond Qubes' one can take the whole volume (create/budget.ts counts them)
          const now = await used(qubesd, settings, ownerTag(principal));
          if (now + (keepSet - Math.max(keep, 1)) * size > settings.poolCap) throw new ActionableError('over-budget', 'the disk budget has no room for the revision a checkpoint keeps');
          await qubesd.call('admin.vm.volume.Set.revisions_to_keep', q.name, VOLUME, String(keepSet));
        }
        const revisions = await revisionsOf(qubesd, q.name);
        await qubesd.call('admin.vm.feature.Set', q.name, CHECKPOINT_FEATURE, formatMark({ anchor: revisions[revisions.length - 1] ?? null, keepBefore }));
        return { name: q.name, revisions_to_keep: keepSet };
      } finally {
        await lock.release();
      }
    },
  };
}

export const revertService: ServiceSpec<{ name: string }> = {
  operation: 'revert',
  changesState: true,
  parse: parseQubeArgument,
  targets: (input) => [{ name: input.name, tier: 'full' }],
  async handle(ctx): Promise<{ name: string; revision: string }> {
    const { qubesd } = ctx;
    const q = await haltedOwnVolume(ctx);
    const raw = await markOf(qubesd, q.name);
    if (raw === null) throw new ActionableError('no-checkpoint', 'the qube has no checkpoint: take one with qube_checkpoint while it is halted');
    const mark = parseMark(raw);
    if (mark === null) throw new ServiceRefusal('checkpoint feature malformed');
    const { keep } = await volumeFigures(qubesd, q.name);
    const found = checkpointRevision(mark, await revisionsOf(qubesd, q.name), keep);
    if (found === 'unchanged') throw new ActionableError('unchanged', 'the qube has not run since its checkpoint: there is nothing to revert');
    if (found === 'lost') throw new ActionableError('checkpoint-lost', 'the checkpoint is no longer kept: the qube was stopped more often since than its volume keeps revisions');
    try {
      await qubesd.call('admin.vm.volume.Revert', q.name, VOLUME, found);
    } catch (err) {
      // started since the check above: qubesd reverts only a cleanly stopped volume
      if (err instanceof QubesdError && err.errorClass === 'StoragePoolException') throw new ActionableError('running', 'the qube is running: shut it down first');
      throw err;
    }
    await qubesd.call('admin.vm.feature.Remove', q.name, CHECKPOINT_FEATURE);
    if (mark.keepBefore < keep) await qubesd.call('admin.vm.volume.Set.revisions_to_keep', q.name, VOLUME, String(mark.keepBefore));
    return { name: q.name, revision: found };
  },
};
