/** Which tags a new qube carries: the birth rule of SPEC §4.5–4.6. */
import { ownerTag } from '../../shared/model/index.js';
import type { QubeFacts, Tier } from '../service/snapshot.js';
import { TIERS } from '../service/snapshot.js';
import type { WriteSettings } from './settings.js';

/** The source's literal elevation tag (not what compat mode makes of an untiered qube). */
export function literalTier(tags: ReadonlySet<string>, settings: WriteSettings): Tier {
  const e = settings.scope.elevation;
  if (tags.has(e.full)) return 'full';
  if (tags.has(e.net)) return 'net';
  if (tags.has(e.exec)) return 'exec';
  return 'read';
}

export function birthTier(source: QubeFacts, settings: WriteSettings): Tier {
  const a = TIERS.indexOf(literalTier(source.tags, settings));
  const b = TIERS.indexOf(settings.birthCeiling);
  return TIERS[Math.min(a, b)] as Tier;
}

export { ownerTag };

/** Tags only dom0 decides: never inherited, never kept from platform propagation. */
export function isControlled(tag: string, settings: WriteSettings): boolean {
  const { umbrella, sink, elevation } = settings.scope;
  return (
    tag === umbrella ||
    tag === sink ||
    tag === elevation.exec ||
    tag === elevation.net ||
    tag === elevation.full ||
    tag.startsWith('qmcp-')
  );
}

/** Qubes' own provenance tags; they always say dom0 here and are left as they are. */
export function isPlatformProvenance(tag: string): boolean {
  return tag.startsWith('created-by-') || tag.startsWith('disp-created-by-');
}

/**
 * Every tag the new qube must carry before the umbrella: its tier, the
 * provenance stamp, the source's restriction tags and (for a clone) the
 * operator's propagating tags. Nothing controlled is ever inherited.
 */
export function birthTags(
  source: QubeFacts,
  settings: WriteSettings,
  principal: string,
  keepPropagating: boolean,
): Set<string> {
  const out = new Set<string>([ownerTag(principal)]);
  const tier = birthTier(source, settings);
  if (tier !== 'read') out.add(settings.scope.elevation[tier]);
  const inherit = [...(settings.restrictionTags ?? []), ...(keepPropagating ? settings.propagatingTags : [])];
  for (const t of inherit) if (source.tags.has(t) && !isControlled(t, settings)) out.add(t);
  return out;
}
