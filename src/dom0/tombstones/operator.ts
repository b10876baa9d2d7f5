/**
 * The operator's tombstone commands (dom0 only, never reachable by the
 * agent): list, restore (back untiered: the umbrella only) and reap, which
 * destroys a tombstone only past the retention period and only when none of
 * its independent vetoes holds (SPEC §4.9). A tombstone in no installed
 * principal's world (an orphan: its principal was removed) has no
 * retention: only the operator's explicit reap of it by name destroys it.
 */
import type { AuditLog } from '../audit/index.js';
import type { HeldLock } from '../lockfile.js';
import type { Qubesd } from '../qubesd.js';

import type { WriteSettings } from '../create/settings.js';
import type { Tier } from '../service/snapshot.js';
import { releaseStart } from './entomb.js';
import { TOMBSTONE_TAG, isTombstoneMarker, markerTime } from './markers.js';
import { QmcpError } from '../../shared/errors.js';
import { LEASE_FEATURE, expiryAt, parseExpiry } from '../../shared/model/lease.js';
import { leaseOf } from '../leases/feature.js';
import { OWNER_PREFIX, ownerTag } from '../../shared/model/marks.js';

export interface Tombstone {
  readonly name: string;
  readonly klass: string;
  readonly state: string;
  /** When it was entombed; null when the marker is undatable. */
  readonly since: string | null;
  readonly tags: readonly string[];
}

export interface TombstoneOps {
  readonly qubesd: Qubesd;
  readonly settings: WriteSettings;
  readonly audit: AuditLog;
  /** The operator's identity in the audit log. */
  readonly operator?: string;
  /** With several principals, the owner tag of the world this covers: only its tombstones. */
  readonly owner?: string;
  /** The installed principals: a tombstone in none's world is an orphan, which no retention governs. */
  readonly principals?: readonly string[];
  /** The principal this covers: an orphan restored comes back as its own. */
  readonly principal?: string;
  /**
   * The machine's budget lock (create/lock.ts), null when it stays busy: a
   * destroy and a restore each hold it, so neither lands between the
   * other's last look and its act.
   */
  readonly lock: () => Promise<HeldLock | null>;
}

const LOCK_BUSY = 'the budget lock stayed busy (a create, remove, restore or reap under way): try again';

/** What reaping needs: who is installed, or every tombstone would fall under this world's retention. */
export type ReapOps = TombstoneOps & { readonly principals: readonly string[] };

const DAY_MS = 24 * 60 * 60 * 1000;

/** Every tombstone, or OWNER's (those carrying that owner tag). */
export async function listTombstones(qubesd: Qubesd, owner?: string): Promise<Tombstone[]> {
  const out: Tombstone[] = [];
  for (const [name, { klass, state }] of await qubesd.list()) {
    if (klass === 'AdminVM') continue;
    const tags = await qubesd.tags(name);
    if (!tags.some(isTombstoneMarker) || (owner !== undefined && !tags.includes(owner))) continue;
    out.push({ name, klass, state, since: markerTime(tags)?.toISOString() ?? null, tags });
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/**
 * Why the tombstone with TAGS is in no installed principal's world (PRINCIPALS),
 * or null when it is in one: it carries an installed principal's owner tag, or
 * none at all while there is a single principal (whose world it then is, as
 * before there were several).
 */
export function orphanReason(tags: readonly string[], principals: readonly string[]): string | null {
  const owners = tags.filter((t) => t.startsWith(OWNER_PREFIX));
  if (owners.some((t) => principals.some((p) => ownerTag(p) === t))) return null;
  if (owners.length > 0) return `its principal ${owners.map((t) => t.slice(OWNER_PREFIX.length)).join(', ')} was removed`;
  return principals.length > 1 ? "it carries no principal's owner tag" : null;
}

/** The tombstones in no installed principal's world, each with why. */
export async function listOrphans(qubesd: Qubesd, principals: readonly string[]): Promise<(Tombstone & { reason: string })[]> {
  const out: (Tombstone & { reason: string })[] = [];
  for (const t of await listTombstones(qubesd)) {
    const reason = orphanReason(t.tags, principals);
    if (reason !== null) out.push({ ...t, reason });
  }
  return out;
}

/** The line for an orphan a reap kept: why, and what the operator can do with it. */
export function orphanKept(name: string, reason: string): string {
  return `kept ${name}: ${reason}, and no retention governs it (qmcp dom0 tombstones restore ${name} --principal P, or qmcp dom0 tombstones reap ${name})`;
}

export class TombstoneError extends QmcpError {
  readonly code = 'ERR_QMCP_TOMBSTONE';
  /** The audit log's short reason. */
  readonly detail: string;

  constructor(message: string, detail: string) {
    super(message);
    this.detail = detail;
  }
}

async function tagsOf(qubesd: Qubesd, name: string): Promise<string[]> {
  return (await qubesd.list()).has(name) ? await qubesd.tags(name) : [];
}

/**
 * Brings a tombstone back untiered (the umbrella only), for the operator;
 * audited as the operator's. An orphan (with `principals` given) comes back
 * re-owned by `principal`: its owner tags swapped while it is still hidden.
 */
export async function restoreTombstone(ops: TombstoneOps, name: string): Promise<void> {
  const principal = ops.operator ?? 'dom0';
  let detail: string | null = null;
  const lock = await ops.lock();
  try {
    if (lock === null) throw new TombstoneError(LOCK_BUSY, 'lock busy');
    const tags = await tagsOf(ops.qubesd, name);
    const orphan = ops.principals !== undefined && tags.some(isTombstoneMarker) ? orphanReason(tags, ops.principals) : null;
    if (orphan !== null) {
      if (ops.principal === undefined) throw new TombstoneError(`${name} is an orphan (${orphan}): name the principal to restore it into`, 'orphan, no principal');
      await reown(ops.qubesd, name, tags, ops.principal);
      detail = `orphan re-owned by ${ops.principal}`;
    } else if (ops.owner !== undefined && !tags.includes(ops.owner)) {
      // another world's tombstone would come back into this principal's umbrella
      throw new TombstoneError(`${name} is not a tombstone of this principal (it does not carry ${ops.owner})`, 'another world');
    }
    await reinstate(ops.qubesd, ops.settings, name, 'read');
  } catch (err) {
    if (err instanceof TombstoneError) await ops.audit.operator({ principal, operation: 'tombstone.restore', qubes: [name], result: 'failed', detail: err.detail });
    throw err;
  } finally {
    await lock?.release();
  }
  await ops.audit.operator({ principal, operation: 'tombstone.restore', qubes: [name], result: 'ok', ...(detail ? { detail } : {}) });
}

/** Swaps an orphan's owner tags for PRINCIPAL's, read back; the tombstone tags keep it hidden meanwhile. */
async function reown(qubesd: Qubesd, name: string, tags: readonly string[], principal: string): Promise<void> {
  const tag = ownerTag(principal);
  // the new tag first: a swap stopped half-way leaves a tombstone of PRINCIPAL's, never one of no one's
  if (!tags.includes(tag)) await qubesd.call('admin.vm.tag.Set', name, tag);
  for (const t of tags) if (t.startsWith(OWNER_PREFIX) && t !== tag) await qubesd.call('admin.vm.tag.Remove', name, t);
  const owners = (await qubesd.tags(name)).filter((t) => t.startsWith(OWNER_PREFIX));
  if (owners.length !== 1 || owners[0] !== tag) throw new TombstoneError(`${name}: owner tags read back differ after re-owning`, 'read back');
}

/**
 * The one restore, the operator's and the agent's: the umbrella back, the
 * markers and the start hold gone, and the elevation tag of `tier` the only
 * one left ('read': none), read back. Whoever calls it has decided the qube
 * may come back at that tier.
 */
export async function reinstate(qubesd: Qubesd, settings: WriteSettings, name: string, tier: Tier, now: Date = new Date()): Promise<void> {
  const tags = (await qubesd.list()).has(name) ? await qubesd.tags(name) : [];
  if (!tags.some(isTombstoneMarker)) throw new TombstoneError(`${name} is not a tombstone`, 'not a tombstone');
  const { umbrella, elevation } = settings.scope;
  const elevations: readonly string[] = [elevation.exec, elevation.net, elevation.full];
  const wanted = tier === 'read' ? null : elevation[tier];
  // Hidden by the tombstone tag until its last step, and a tombstone at every step before it, so a
  // restore that fails half-way is hidden, and the next restore finishes it.
  if (!tags.includes(TOMBSTONE_TAG)) await qubesd.call('admin.vm.tag.Set', name, TOMBSTONE_TAG);
  for (const t of tags) if (elevations.includes(t) && t !== wanted) await qubesd.call('admin.vm.tag.Remove', name, t);
  if (wanted !== null && !tags.includes(wanted)) await qubesd.call('admin.vm.tag.Set', name, wanted);
  await releaseStart(qubesd, name);
  await reletLapsed(qubesd, settings, name, now);
  if (!tags.includes(umbrella)) await qubesd.call('admin.vm.tag.Set', name, umbrella);
  for (const t of tags) if (isTombstoneMarker(t) && t !== TOMBSTONE_TAG) await qubesd.call('admin.vm.tag.Remove', name, t);
  // An entombing that failed at its last step left the hiding tag on.
  if (tags.includes(settings.incomplete)) await qubesd.call('admin.vm.tag.Remove', name, settings.incomplete);
  await qubesd.call('admin.vm.tag.Remove', name, TOMBSTONE_TAG);
  const back = new Set(await qubesd.tags(name));
  const hidden = back.has(settings.incomplete);
  const tierBack = elevations.filter((t) => back.has(t));
  if (!back.has(umbrella) || hidden || [...back].some(isTombstoneMarker) || tierBack.length !== (wanted === null ? 0 : 1) || (wanted !== null && !back.has(wanted))) {
    throw new TombstoneError(`${name}: tags read back differ after restore`, 'read back');
  }
}

/**
 * A qube whose lease lapsed comes back with the default lease from now (or
 * none, when the settings say none), so the next reaper run does not end it
 * again and a restore never lifts a lease. A malformed setting leaves it be.
 */
async function reletLapsed(qubesd: Qubesd, settings: WriteSettings, name: string, now: Date): Promise<void> {
  const lease = await leaseOf(qubesd, name);
  if (lease === null || settings.lease === null) return;
  const at = parseExpiry(lease);
  if (at !== null && at.getTime() > now.getTime()) return;
  const seconds = settings.lease.defaultSeconds;
  if (seconds === null) await qubesd.call('admin.vm.feature.Remove', name, LEASE_FEATURE);
  else await qubesd.call('admin.vm.feature.Set', name, LEASE_FEATURE, expiryAt(now, seconds));
}

export interface ReapResult {
  readonly reaped: string[];
  /** Tombstones kept, each with why. */
  readonly kept: { name: string; reason: string }[];
  /** Set when nothing was destroyed because the retention setting is unusable. */
  readonly refused?: string;
}

/** Why this tombstone must not be destroyed now; null when it may be. */
export function veto(t: Tombstone, settings: WriteSettings, now: Date): string | null {
  // every comparison with NaN is false, so an invalid clock would pass the retention check
  if (Number.isNaN(now.getTime())) return 'invalid clock';
  if (t.tags.includes(settings.scope.umbrella)) return 'still carries the umbrella';
  if (t.state !== 'Halted') return 'not halted';
  if (t.since === null) return 'undatable marker';
  const since = Date.parse(t.since);
  if (since > now.getTime()) return 'marker in the future';
  if (settings.retentionDays === null) return 'retention unreadable';
  if (now.getTime() - since < settings.retentionDays * DAY_MS) return 'within retention';
  return null;
}

/** Destroys this world's tombstones past retention; an unreadable retention destroys nothing, and orphans are no world's. */
export async function reapTombstones(ops: ReapOps, now: Date): Promise<ReapResult> {
  const { qubesd, settings } = ops;
  const mine = async (): Promise<Tombstone[]> => (await listTombstones(qubesd, ops.owner)).filter((t) => orphanReason(t.tags, ops.principals) === null);
  const principal = ops.operator ?? 'dom0';
  if (settings.retentionDays === null) {
    await ops.audit.operator({ principal, operation: 'tombstone.reap', qubes: [], result: 'refused', detail: 'retention unreadable' });
    return { reaped: [], kept: [], refused: 'retention setting unreadable: nothing destroyed' };
  }
  const reaped: string[] = [];
  const kept: { name: string; reason: string }[] = [];
  for (const t of await mine()) {
    const why = veto(t, settings, now);
    if (why !== null) {
      kept.push({ name: t.name, reason: why });
      continue;
    }
    const held = await ops.lock();
    if (held === null) {
      kept.push({ name: t.name, reason: 'budget lock busy' });
      continue;
    }
    try {
      // Re-read just before destroying, under the lock: the listing may be stale.
      const fresh = (await mine()).find((x) => x.name === t.name);
      const again = fresh ? veto(fresh, settings, now) : 'gone';
      if (again !== null) {
        kept.push({ name: t.name, reason: again });
        continue;
      }
      try {
        await qubesd.call('admin.vm.Remove', t.name);
        reaped.push(t.name);
        await ops.audit.operator({ principal, operation: 'tombstone.reap', qubes: [t.name], result: 'ok' });
      } catch (err) {
        kept.push({ name: t.name, reason: `remove failed: ${(err as Error).message}` });
        await ops.audit.operator({ principal, operation: 'tombstone.reap', qubes: [t.name], result: 'failed', detail: 'remove failed' });
      }
    } finally {
      await held.release();
    }
  }
  return { reaped, kept };
}

/**
 * The operator's explicit reap of orphan NAME: no retention governs it, so
 * the operator's naming it stands in for one. Kept (with why) when it is no
 * orphan, still carries one of UMBRELLAS (the installed principals'), or is
 * not halted.
 */
export async function reapOrphan(ops: ReapOps, name: string, umbrellas: readonly string[]): Promise<ReapResult> {
  const orphanLock = await ops.lock();
  if (orphanLock === null) return { reaped: [], kept: [{ name, reason: 'budget lock busy' }] };
  try {
    return await reapOrphanLocked(ops, name, umbrellas);
  } finally {
    await orphanLock.release();
  }
}

async function reapOrphanLocked(ops: ReapOps, name: string, umbrellas: readonly string[]): Promise<ReapResult> {
  const principal = ops.operator ?? 'dom0';
  const t = (await listTombstones(ops.qubesd)).find((x) => x.name === name);
  const why =
    t === undefined ? 'not a tombstone'
    : orphanReason(t.tags, ops.principals) === null ? 'not an orphan: its principal\'s retention governs it (reap without a name)'
    : t.tags.some((x) => umbrellas.includes(x)) ? 'still carries an umbrella'
    : t.state !== 'Halted' ? 'not halted'
    : null;
  if (why !== null) return { reaped: [], kept: [{ name, reason: why }] };
  try {
    await ops.qubesd.call('admin.vm.Remove', name);
  } catch (err) {
    await ops.audit.operator({ principal, operation: 'tombstone.reap', qubes: [name], result: 'failed', detail: 'remove failed' });
    return { reaped: [], kept: [{ name, reason: `remove failed: ${(err as Error).message}` }] };
  }
  await ops.audit.operator({ principal, operation: 'tombstone.reap', qubes: [name], result: 'ok', detail: 'orphan, named by the operator' });
  return { reaped: [name], kept: [] };
}
