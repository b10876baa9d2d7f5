/**
 * `qmcp dom0 tier`: the operator sets the tier the agent has over one qube.
 * The qube keeps the umbrella tag (added when missing) and ends with at most
 * one elevation tag; the others are removed. dom0, sinks (an umbrella+sink
 * hybrid would let a sink reach back into the umbrella) and tombstones are
 * refused. Every outcome is an 'operator' audit entry.
 */
import type { AuditLog } from '../audit/index.js';
import type { Qubesd } from '../qubesd.js';
import { hasFatal, readPrincipalsFile, settingsPath, worldTags } from '../../shared/model/index.js';
import type { Settings } from '../../shared/model/index.js';
import { isTombstoneMarker } from '../tombstones/markers.js';
import { QmcpError } from '../../shared/errors.js';

export const TIER_CHOICES = ['none', 'exec', 'net', 'full'] as const;
export type TierChoice = (typeof TIER_CHOICES)[number];

export function isTierChoice(v: unknown): v is TierChoice {
  return typeof v === 'string' && (TIER_CHOICES as readonly string[]).includes(v);
}

/** Refused before or during the change; the message is for the operator. */
export class OperatorRefusal extends QmcpError {
  readonly code = 'ERR_QMCP_OPERATOR_REFUSED';
}

export interface TierOps {
  readonly root: string;
  readonly qubesd: Qubesd;
  readonly audit: AuditLog;
  /** The operator's identity in the audit log. */
  readonly operator?: string;
  /** The principal whose world the qube is in; needed when the settings hold several. */
  readonly principal?: string;
}

export interface TierResult {
  readonly qube: string;
  readonly tier: TierChoice;
  readonly added: string[];
  readonly removed: string[];
}

/**
 * The installed settings of PRINCIPAL (or of the only principal), and the
 * others'; unusable settings refuse, since a wrong name would tier nothing
 * or the wrong thing.
 */
export function installedPrincipal(root: string, principal?: string): { settings: Settings; others: Settings[] } {
  const { principals, problems } = readPrincipalsFile(settingsPath(root));
  if (hasFatal(problems)) {
    throw new OperatorRefusal(`settings at ${settingsPath(root)} are unusable: ${problems.map((p) => p.message).join('; ')}`);
  }
  const settings = pickPrincipal(principals.list, (s) => s.principal, principal);
  return { settings, others: principals.list.filter((s) => s !== settings) };
}

/** Of the settings' principals (each named by `nameOf`), PRINCIPAL's, or the only one; else an OperatorRefusal naming them. */
export function pickPrincipal<T>(list: readonly T[], nameOf: (t: T) => unknown, principal: string | undefined): T {
  const found = principal === undefined && list.length === 1 ? list[0] : list.find((t) => nameOf(t) === principal);
  if (found !== undefined) return found;
  const names = list.map((t) => String(nameOf(t))).join(', ');
  throw new OperatorRefusal(principal === undefined ? `the settings hold several principals (${names}): name one with --principal` : `no principal ${principal}: the settings name ${names}`);
}

export async function setTier(ops: TierOps, qube: string, tier: TierChoice): Promise<TierResult> {
  const record = async (result: 'ok' | 'failed', detail: string): Promise<void> => {
    try {
      await ops.audit.operator({ principal: ops.operator ?? 'dom0', operation: 'tier', qubes: [qube], keys: [tier], result, detail });
    } catch (err) {
      // a refusal stands whether or not it could be logged
      if (result === 'ok') throw err;
    }
  };
  const refuse = async (message: string): Promise<never> => {
    await record('failed', message);
    throw new OperatorRefusal(message);
  };

  const { settings, others } = installedPrincipal(ops.root, ops.principal);
  const tags = settings.tags;
  const qubes = await ops.qubesd.list();
  const facts = qubes.get(qube);
  if (qube === 'dom0' || facts?.klass === 'AdminVM') return refuse('dom0 is never tiered: the agent has no access to it');
  if (!facts) return refuse(`no qube named ${qube}`);
  const before = await ops.qubesd.tags(qube);
  if (before.includes(tags.sink)) {
    return refuse(
      `${qube} carries the sink tag ${tags.sink}; a sink never joins the umbrella (an umbrella+sink hybrid could copy back into the sandbox). Remove ${tags.sink} first if you mean it.`,
    );
  }
  // tiering it here too would put it in two worlds, which is neither
  for (const o of others) {
    const theirs = worldTags(o).filter((t) => before.includes(t));
    if (theirs.length > 0) return refuse(`${qube} is in ${o.principal}'s world (it carries ${theirs.join(', ')}): tier it with --principal ${o.principal}, or remove those tags first if you mean to move it`);
  }
  if (before.some(isTombstoneMarker)) return refuse(`${qube} is a tombstone; restore it first (qmcp dom0 tombstones restore ${qube} --principal ${settings.principal})`);

  const elevation: Record<Exclude<TierChoice, 'none'>, string> = { exec: tags.exec, net: tags.net, full: tags.full };
  const want = tier === 'none' ? null : elevation[tier];
  const added: string[] = [];
  const removed: string[] = [];
  // lower first, then raise: a failure in between leaves less access, never more
  for (const t of Object.values(elevation)) {
    if (t !== want && before.includes(t)) {
      await ops.qubesd.call('admin.vm.tag.Remove', qube, t);
      removed.push(t);
    }
  }
  if (!before.includes(tags.umbrella)) {
    await ops.qubesd.call('admin.vm.tag.Set', qube, tags.umbrella);
    added.push(tags.umbrella);
  }
  if (want !== null && !before.includes(want)) {
    await ops.qubesd.call('admin.vm.tag.Set', qube, want);
    added.push(want);
  }

  const after = new Set(await ops.qubesd.tags(qube));
  const held = Object.values(elevation).filter((t) => after.has(t));
  if (!after.has(tags.umbrella) || held.length !== (want ? 1 : 0) || (want !== null && !after.has(want))) {
    return refuse(`${qube}: tags read back differ after the change`);
  }
  await record('ok', added.length || removed.length ? `added ${added.join(',') || '-'} removed ${removed.join(',') || '-'}` : 'unchanged');
  return { qube, tier, added, removed };
}
