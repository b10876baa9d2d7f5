/**
 * Lease expiry, run by the reaper's timer (never by an agent's call): a
 * qube whose lease has passed ends exactly as the agent's remove ends it,
 * halted (killed if it will not shut down) and kept as a tombstone the
 * operator or the agent can restore. It never destroys a qube's data itself.
 */
import type { AuditLog } from '../audit/index.js';
import type { HeldLock } from '../lockfile.js';
import type { Qubesd } from '../qubesd.js';
import { eachQube } from '../qubesd.js';
import type { WriteSettings } from '../create/settings.js';
import { retire } from '../services/remove.js';
import { isTombstoneMarker } from '../tombstones/markers.js';
import { usersOf } from '../tombstones/users.js';
import { parseExpiry } from '../../shared/model/lease.js';
import { leaseOf } from './feature.js';
import { OWNER_PREFIX } from '../../shared/model/marks.js';

export interface LeaseOps {
  readonly qubesd: Qubesd;
  readonly settings: WriteSettings;
  readonly audit: AuditLog;
  /** The budget lock, which renewals take too, so a renewal and an expiry never interleave. */
  lock(): Promise<HeldLock | null>;
  /** The reaper's identity in the audit log. */
  readonly operator?: string;
  /** With several principals, the owner tag of the world this covers: only its qubes. */
  readonly owner?: string;
}

/** A leased qube as the reaper sees it. */
export interface Leased {
  readonly name: string;
  readonly klass: string;
  readonly tags: readonly string[];
  /** The feature's value as read. */
  readonly expires: string;
}

export interface ExpireResult {
  readonly expired: string[];
  /** Leased qubes kept, each with why. */
  readonly kept: { name: string; reason: string }[];
  /** Set when nothing expired because the settings are unusable. */
  readonly refused?: string;
}

/** The principal owning the qube (from its owner tag); null unless exactly one. */
function ownerOf(tags: readonly string[]): string | null {
  const owners = tags.filter((t) => t.startsWith(OWNER_PREFIX));
  return owners.length === 1 ? (owners[0] as string).slice(OWNER_PREFIX.length) : null;
}

/** Why this qube's lease must not end it now; null when it must. */
export function leaseVeto(q: Leased, settings: WriteSettings, now: Date): string | null {
  // every comparison with NaN is false, so an invalid clock would pass the check below
  if (Number.isNaN(now.getTime())) return 'invalid clock';
  if (!q.tags.includes(settings.scope.umbrella)) return 'outside the umbrella';
  if (q.tags.includes(settings.incomplete) || q.tags.some(isTombstoneMarker)) return 'hidden (being created or removed)';
  const at = parseExpiry(q.expires);
  if (at === null) return 'unreadable expiry';
  if (at.getTime() > now.getTime()) return 'lease not yet over';
  if (ownerOf(q.tags) === null) return 'no single owner';
  return null;
}

/** Every qube carrying the lease feature, by name, whoever's it is (OWNER: those carrying that owner tag). */
export async function leased(qubesd: Qubesd, owner?: string): Promise<Leased[]> {
  const qubes = [...(await qubesd.list())].filter(([, q]) => q.klass !== 'AdminVM');
  const read = await eachQube(qubes.map(([n]) => n), async (name): Promise<Leased | null> => {
    const expires = await leaseOf(qubesd, name);
    if (expires === null) return null;
    const klass = qubes.find(([n]) => n === name)?.[1].klass ?? '';
    return { name, klass, tags: await qubesd.tags(name), expires };
  });
  return [...read.values()].filter((q): q is Leased => q !== null && (owner === undefined || q.tags.includes(owner))).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/**
 * Ends the qubes whose lease is over, each as a remove would. Unusable
 * settings (unreadable, a fatal problem, or a malformed lease) end nothing:
 * their fallback names the default umbrella, which need not be the installed one.
 */
export async function expireLeases(ops: LeaseOps, now: Date): Promise<ExpireResult> {
  const { qubesd, settings } = ops;
  const principal = ops.operator ?? 'qmcp-reaper';
  if (settings.lease === null) {
    await ops.audit.operator({ principal, operation: 'lease.expire', qubes: [], result: 'refused', detail: 'settings unusable' });
    return { expired: [], kept: [], refused: 'the lease setting is unusable (the settings lines say why): nothing expired' };
  }
  const expired: string[] = [];
  const kept: { name: string; reason: string }[] = [];
  for (const q of await leased(qubesd, ops.owner)) {
    const why = leaseVeto(q, settings, now);
    if (why !== null) {
      if (why !== 'lease not yet over') kept.push({ name: q.name, reason: why });
      continue;
    }
    const lock = await ops.lock();
    if (!lock) {
      kept.push({ name: q.name, reason: 'budget lock busy' });
      continue;
    }
    try {
      // Read again under the lock: a renewal may have come in since the listing.
      const fresh = (await leased(qubesd, ops.owner)).find((x) => x.name === q.name);
      const again = fresh ? leaseVeto(fresh, settings, now) : 'gone';
      if (again !== null || !fresh) {
        kept.push({ name: q.name, reason: again ?? 'gone' });
        continue;
      }
      // As remove: a qube others use stays until they change (the operator sees which).
      const users = await usersOf(qubesd, q.name);
      if (users.length > 0) {
        kept.push({ name: q.name, reason: `in use by ${users.join(', ')}` });
        continue;
      }
      await retire(qubesd, settings, ownerOf(fresh.tags) as string, fresh, now);
      expired.push(q.name);
      await ops.audit.operator({ principal, operation: 'lease.expire', qubes: [q.name], result: 'ok' });
    } catch (err) {
      kept.push({ name: q.name, reason: `ending failed: ${(err as Error).message}` });
      await ops.audit.operator({ principal, operation: 'lease.expire', qubes: [q.name], result: 'failed', detail: 'ending failed' });
    } finally {
      await lock.release();
    }
  }
  return { expired, kept };
}

/** The operator's lines for a run: what expired, what was kept and why. */
export function expiryLines(r: ExpireResult, show: (name: string) => string = (n) => n): string[] {
  return [
    ...(r.refused ? [`nothing expired: ${r.refused}`] : []),
    ...r.expired.map((n) => `lease over: ${show(n)} kept as a tombstone`),
    ...r.kept.map((k) => `lease over, kept ${show(k.name)}: ${k.reason}`),
  ];
}
