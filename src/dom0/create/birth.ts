/**
 * The one create pipeline every create path runs (SPEC §4.5, 4.7, 4.10,
 * 4.11): under the budget lock, make the qube hidden, strip what the
 * platform propagated, configure it, check the caps against what was
 * really made, apply the tags by rule, read everything back, and only then
 * apply the umbrella. Any failure removes what was made; a removal that
 * fails is made loud.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { QubesdError } from '../qubesd.js';
import type { Qubesd } from '../qubesd.js';
import { ActionableError, ServiceRefusal } from '../service/refusal.js';
import type { QubeFacts } from '../service/snapshot.js';
import { footprint, used, withinCaps } from './budget.js';
import type { Footprint } from './budget.js';
import type { WriteDeps } from './deps.js';
import { stateDir } from './deps.js';
import { takeBudgetLock } from './lock.js';
import { MARKERS, isInstalledPrincipal } from './settings.js';
import type { WriteSettings } from './settings.js';
import { birthTags, isPlatformProvenance, ownerTag } from './tags.js';
import { QmcpError } from '../../shared/errors.js';
import { LEASE_FEATURE, expiryAt } from '../../shared/model/lease.js';


export interface BirthPlan {
  readonly source: QubeFacts;
  /** Keep the operator's propagating tags (clones only). */
  readonly keepPropagating: boolean;
  /** The netvm to set: a qube name, or null for none. */
  readonly netvm: string | null;
  /** The default_dispvm to set: a qube name, or null for none. */
  readonly defaultDispvm: string | null;
  /**
   * The platform copies the source's tags and features into the new qube
   * (disposables): the source is marked hidden and held for the moment of
   * making, so the qube is born hidden and unstartable, and the new qube is
   * held halted until complete.
   */
  readonly inheritsFromSource: boolean;
  /** What the new qube is expected to add, checked before anything is made. */
  readonly estimate: Footprint;
  /** The new qube's name, or how to choose one from the names taken (under the lock, so two creates never choose alike). */
  readonly name: string | ((taken: ReadonlySet<string>) => string | null);
  /**
   * Seconds the new qube lives, from the moment it is made (null: no
   * expiry); absent when the platform gives it its source's (disposables).
   */
  readonly lease?: number | null;
  /** Makes the qube. */
  make(name: string): Promise<void>;
  /** Class-specific settings on the new (still hidden) qube. */
  configure(name: string): Promise<void>;
}

export interface BirthContext {
  readonly qubesd: Qubesd;
  readonly principal: string;
  readonly settings: WriteSettings;
  readonly deps: WriteDeps;
}

const HOLD_FEATURE = 'prohibit-start';
const HOLD_REASON = 'qmcp: incomplete';

/** An error whose name the runner records as the failure class in the audit log. */
class RollbackFailed extends QmcpError {
  readonly code = 'ERR_QMCP_ROLLBACK_FAILED';

  constructor(qube: string) {
    super(`rollback of ${qube} failed`);
  }
}

async function addTag(q: Qubesd, name: string, tag: string): Promise<void> {
  await q.call('admin.vm.tag.Set', name, tag);
}

async function setVmProp(q: Qubesd, name: string, prop: string, value: string | null): Promise<void> {
  await q.call('admin.vm.property.Set', name, prop, value ?? '');
}

async function readTags(q: Qubesd, name: string): Promise<Set<string>> {
  return new Set(await q.tags(name));
}

/** The tag set read back must be exactly `want`, apart from Qubes' own provenance tags. */
function sameTags(have: ReadonlySet<string>, want: ReadonlySet<string>): boolean {
  const mine = [...have].filter((t) => !isPlatformProvenance(t));
  return mine.length === want.size && mine.every((t) => want.has(t));
}

async function verify(c: BirthContext, name: string, plan: BirthPlan, want: ReadonlySet<string>, expires: string | null | undefined): Promise<void> {
  if (expires !== undefined && (await featureValue(c.qubesd, name, LEASE_FEATURE)) !== expires) throw new Error('lease read back differs');
  if (!sameTags(await readTags(c.qubesd, name), want)) throw new Error('tags read back differ');
  const netvm = await c.qubesd.property(name, 'netvm');
  if (netvm.isDefault || netvm.value !== (plan.netvm ?? '')) throw new Error('netvm read back differs');
  const dd = await c.qubesd.property(name, 'default_dispvm');
  if (dd.isDefault || dd.value !== (plan.defaultDispvm ?? '')) throw new Error('default_dispvm read back differs');
  if ((await c.qubesd.property(name, 'provides_network')).value !== 'False') throw new Error('provides_network set');
  // A start that raced in before the qube was hidden fails the create: nothing incomplete may have run.
  if (!/power_state=Halted/.test(await c.qubesd.call('admin.vm.CurrentState', name))) throw new Error('started while incomplete');
}

async function rollback(c: BirthContext, name: string): Promise<void> {
  try {
    const state = await c.qubesd.call('admin.vm.CurrentState', name);
    if (!/power_state=Halted/.test(state)) await c.qubesd.call('admin.vm.Kill', name);
  } catch {
    // Halted already, or gone: the removal below says which.
  }
  try {
    await c.qubesd.call('admin.vm.Remove', name);
    return;
  } catch (err) {
    c.deps.log(`create rollback: removing ${name} failed: ${(err as Error).message}`);
  }
  // Loud half-state: hidden, marked for doctor, and a file beside the state.
  for (const step of [
    () => addTag(c.qubesd, name, c.settings.incomplete),
    () => addTag(c.qubesd, name, MARKERS.rollbackFailed),
    () => c.qubesd.call('admin.vm.tag.Remove', name, c.settings.scope.umbrella),
  ]) {
    try {
      await step();
    } catch {
      // Best effort: the marker file below stands regardless.
    }
  }
  try {
    const dir = join(stateDir(c.deps.root), 'rollback-failed');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    writeFileSync(join(dir, name), JSON.stringify({ qube: name, principal: c.principal, at: c.deps.now().toISOString() }) + '\n');
  } catch (err) {
    c.deps.log(`create rollback: marker file for ${name} failed: ${(err as Error).message}`);
  }
  throw new RollbackFailed(name);
}

/** Whether a qube of this name exists; an unreadable answer counts as yes, so nothing is made over it. */
async function exists(q: Qubesd, name: string): Promise<boolean> {
  try {
    return (await q.list(name)).has(name);
  } catch (err) {
    return !(err instanceof QubesdError && err.errorClass === 'QubesVMNotFoundError');
  }
}

async function featureValue(q: Qubesd, name: string, feature: string): Promise<string | null> {
  try {
    return await q.call('admin.vm.feature.Get', name, feature);
  } catch {
    return null;
  }
}

/**
 * Qubes tags every qube dom0 creates with the tags in dom0's
 * `tag-created-vm-with` feature; one of ours there would make a qube
 * visible (or tiered) before it is complete, so such a host creates nothing.
 */
async function refuseControlledCreatorTags(c: BirthContext): Promise<void> {
  const { scope } = c.settings;
  const controlled = new Set([scope.umbrella, scope.sink]);
  const extra = (await featureValue(c.qubesd, 'dom0', 'tag-created-vm-with')) ?? '';
  const bad = extra.split(/\s+/).filter((t) => controlled.has(t));
  if (bad.length > 0) {
    c.deps.log(`create refused: dom0's tag-created-vm-with names ${bad.join(', ')}`);
    throw new ServiceRefusal('tag-created-vm-with names a controlled tag');
  }
}

/**
 * Marks the source hidden and held, so what the platform copies from it is
 * born hidden and held. Returns the undo, and the source's own hold value
 * (the new qube keeps that once complete). A crash in between leaves the
 * source marked: the loud half-state doctor reports.
 */
async function markSource(c: BirthContext, source: string): Promise<{ unmark(): Promise<void>; ownHold: string | null }> {
  const ownHold = await featureValue(c.qubesd, source, HOLD_FEATURE);
  await addTag(c.qubesd, source, c.settings.incomplete);
  if (ownHold === null) await c.qubesd.call('admin.vm.feature.Set', source, HOLD_FEATURE, HOLD_REASON);
  return {
    ownHold,
    async unmark() {
      if (ownHold === null) await c.qubesd.call('admin.vm.feature.Remove', source, HOLD_FEATURE);
      await c.qubesd.call('admin.vm.tag.Remove', source, c.settings.incomplete);
    },
  };
}

/** After a failed make, the source is unmarked; if even that fails, it stays hidden and held, and says so. */
async function unmarkOrReport(c: BirthContext, sourceName: string, source: { unmark(): Promise<void> }): Promise<void> {
  try {
    await source.unmark();
  } catch (err) {
    c.deps.log(`create: unmarking ${sourceName} failed, it stays hidden and held: ${(err as Error).message}`);
  }
}

/** Runs the pipeline; resolves to the new qube's name once it is complete and visible. */
export async function giveBirth(c: BirthContext, plan: BirthPlan): Promise<string> {
  const { qubesd, settings, deps } = c;
  // the operator's settings, the same whatever else the machine holds
  if (settings.poolCap === null || settings.privateCap === null) throw new ActionableError('budget_unset', 'no disk budget is set, so nothing can be created: ask the operator');
  if (settings.restrictionTags === null) throw new ServiceRefusal('restriction tags setting unusable');
  const fault = async (step: string): Promise<void> => {
    await deps.fault?.(step);
  };

  const lock = await takeBudgetLock(deps);
  if (!lock) throw new ServiceRefusal('budget lock busy');
  let name: string | null = null;
  let wanted = typeof plan.name === 'string' ? plan.name : '';
  let making = false;
  let source: Awaited<ReturnType<typeof markSource>> | null = null;
  let sourceHold: string | null = null;
  try {
    // a principal removed while this create waited for the lock must get no qube: its owner tag would outlive it
    if (!isInstalledPrincipal(deps.root, c.principal)) throw new ServiceRefusal('principal removed meanwhile');
    if (!withinCaps(settings, await used(qubesd, settings, ownerTag(c.principal)), plan.estimate)) {
      throw new ActionableError('over_budget', 'the disk budget has no headroom for a qube this size (pool_figures shows it)');
    }
    await refuseControlledCreatorTags(c);
    if (plan.inheritsFromSource) {
      source = await markSource(c, plan.source.name);
      sourceHold = source.ownHold;
      await fault('source-marked');
    }
    if (typeof plan.name !== 'string') {
      const chosen = plan.name(new Set((await qubesd.list()).keys()));
      if (chosen === null) throw new ActionableError('no_free_name', 'no free name is left for a disposable: give one');
      wanted = chosen;
    }
    // Free under the lock, so a qube of this name after a failed make is this call's (a lost reply).
    if (await exists(qubesd, wanted)) throw new ServiceRefusal('name taken meanwhile');
    making = true;
    await plan.make(wanted);
    name = wanted;
    await fault('created');
    // Hidden first: the platform may already have given it the umbrella.
    await addTag(qubesd, name, settings.incomplete);
    if (plan.inheritsFromSource) await qubesd.call('admin.vm.feature.Set', name, HOLD_FEATURE, HOLD_REASON);
    await fault('hidden');
    if (source) {
      await source.unmark();
      source = null;
      await fault('source-unmarked');
    }

    const want = birthTags(plan.source, settings, c.principal, plan.keepPropagating);
    for (const t of await readTags(qubesd, name)) {
      if (t === settings.incomplete || isPlatformProvenance(t) || want.has(t)) continue;
      await qubesd.call('admin.vm.tag.Remove', name, t);
    }
    await fault('stripped');

    await setVmProp(qubesd, name, 'netvm', plan.netvm);
    await setVmProp(qubesd, name, 'default_dispvm', plan.defaultDispvm);
    await plan.configure(name);
    // The lease runs from the making, set while the qube is still hidden.
    const expires = plan.lease === undefined ? undefined : plan.lease === null ? null : expiryAt(deps.now(), plan.lease);
    if (expires === null) await qubesd.call('admin.vm.feature.Remove', name, LEASE_FEATURE).catch(() => undefined);
    else if (expires !== undefined) await qubesd.call('admin.vm.feature.Set', name, LEASE_FEATURE, expires);
    await fault('configured');

    const made = await footprint(qubesd, name);
    if (!withinCaps(settings, await used(qubesd, settings, ownerTag(c.principal), name), made)) {
      throw new ActionableError('over_budget', 'the disk budget has no headroom for a qube this size (pool_figures shows it)');
    }

    for (const t of want) await addTag(qubesd, name, t);
    await fault('tagged');
    await verify(c, name, plan, new Set([...want, settings.incomplete]), expires);
    await fault('verified');

    // The umbrella last; the qube turns visible when the hiding marker goes.
    await addTag(qubesd, name, settings.scope.umbrella);
    await fault('umbrella');
    if (plan.inheritsFromSource) {
      // The source's own hold, if it had one, is the new qube's inheritance to keep.
      if (sourceHold === null) await qubesd.call('admin.vm.feature.Remove', name, HOLD_FEATURE);
      else await qubesd.call('admin.vm.feature.Set', name, HOLD_FEATURE, sourceHold);
    }
    await qubesd.call('admin.vm.tag.Remove', name, settings.incomplete);
    if (!sameTags(await readTags(qubesd, name), new Set([...want, settings.scope.umbrella]))) {
      throw new Error('final tags read back differ');
    }
    return name;
  } catch (err) {
    if (name === null && making && (await exists(qubesd, wanted))) name = wanted;
    if (name !== null) await rollback(c, name);
    if (source) await unmarkOrReport(c, plan.source.name, source);
    throw err;
  } finally {
    await lock.release();
  }
}
