/**
 * The operator's tombstone commands (dom0 only, never reachable by the
 * agent): list, restore (back untiered: the umbrella only) and reap, which
 * destroys a tombstone only past the retention period and only when none of
 * its independent vetoes holds (SPEC §4.9).
 */
import type { AuditLog } from '../audit/index.js';
import type { Qubesd } from '../qubesd.js';

import type { WriteSettings } from '../create/settings.js';
import type { Tier } from '../service/snapshot.js';
import { releaseStart } from './entomb.js';
import { TOMBSTONE_TAG, isTombstoneMarker, markerTime } from './markers.js';
import { QmcpError } from '../../shared/errors.js';
import { LEASE_FEATURE, expiryAt, parseExpiry } from '../../shared/model/lease.js';
import { leaseOf } from '../leases/feature.js';

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
}

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

export class TombstoneError extends QmcpError {
  readonly code = 'ERR_QMCP_TOMBSTONE';
  /** The audit log's short reason. */
  readonly detail: string;

  constructor(message: string, detail: string) {
    super(message);
    this.detail = detail;
  }
}

/** Brings a tombstone back untiered (the umbrella only), for the operator; audited as the operator's. */
export async function restoreTombstone(ops: TombstoneOps, name: string): Promise<void> {
  const principal = ops.operator ?? 'dom0';
  try {
    // another world's tombstone would come back into this principal's umbrella
    if (ops.owner !== undefined && !(await listTombstones(ops.qubesd, ops.owner)).some((t) => t.name === name)) {
      throw new TombstoneError(`${name} is not a tombstone of this principal (it does not carry ${ops.owner})`, 'another world');
    }
    await reinstate(ops.qubesd, ops.settings, name, 'read');
  } catch (err) {
    if (err instanceof TombstoneError) await ops.audit.operator({ principal, operation: 'tombstone.restore', qubes: [name], result: 'failed', detail: err.detail });
    throw err;
  }
  await ops.audit.operator({ principal, operation: 'tombstone.restore', qubes: [name], result: 'ok' });
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

/** Destroys the tombstones past retention; an unreadable retention destroys nothing. */
export async function reapTombstones(ops: TombstoneOps, now: Date): Promise<ReapResult> {
  const { qubesd, settings } = ops;
  const principal = ops.operator ?? 'dom0';
  if (settings.retentionDays === null) {
    await ops.audit.operator({ principal, operation: 'tombstone.reap', qubes: [], result: 'refused', detail: 'retention unreadable' });
    return { reaped: [], kept: [], refused: 'retention setting unreadable: nothing destroyed' };
  }
  const reaped: string[] = [];
  const kept: { name: string; reason: string }[] = [];
  for (const t of await listTombstones(qubesd, ops.owner)) {
    const why = veto(t, settings, now);
    if (why !== null) {
      kept.push({ name: t.name, reason: why });
      continue;
    }
    // Re-read just before destroying: the listing may be stale.
    const fresh = (await listTombstones(qubesd, ops.owner)).find((x) => x.name === t.name);
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
  }
  return { reaped, kept };
}

