/**
 * `qmcp dom0 tier`: the operator sets the tier the agent has over one qube.
 * The qube keeps the umbrella tag (added when missing) and ends with at most
 * one elevation tag; the others are removed. dom0, sinks (an umbrella+sink
 * hybrid would let a sink reach back into the umbrella) and tombstones are
 * refused. Every outcome is an 'operator' audit entry.
 */
import type { AuditLog } from '../audit/index.js';
import type { Qubesd } from '../qubesd.js';
import { hasFatal, readSettingsFile, settingsPath } from '../../shared/model/index.js';
import type { TagNames } from '../../shared/model/index.js';
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
}

export interface TierResult {
  readonly qube: string;
  readonly tier: TierChoice;
  readonly added: string[];
  readonly removed: string[];
}

/** The installed tag names; unusable settings refuse, since a wrong name would tier nothing or the wrong thing. */
export function installedTags(root: string): TagNames {
  const { settings, problems } = readSettingsFile(settingsPath(root));
  if (hasFatal(problems)) {
    throw new OperatorRefusal(`settings at ${settingsPath(root)} are unusable: ${problems.map((p) => p.message).join('; ')}`);
  }
  return settings.tags;
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

  const tags = installedTags(ops.root);
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
  if (before.some(isTombstoneMarker)) return refuse(`${qube} is a tombstone; restore it first (qmcp dom0 tombstones restore ${qube})`);

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
