/**
 * The tombstone's tags: `qmcp-tombstone`, which hides it (policy and
 * services), and one dated tag, `qmcp-tombstone-YYYYMMDDTHHMMSSZ`.
 */
import { MARKERS } from '../create/settings.js';
import { TOMBSTONE_PREFIX, isTombstoneTag } from '../service/config.js';

/** The tag that hides a tombstone; a restore removes it last. */
export const TOMBSTONE_TAG = TOMBSTONE_PREFIX;

export function datedMarker(at: Date): string {
  const iso = at.toISOString(); // 2026-11-23T20:38:12.345Z
  return MARKERS.tombstone + iso.slice(0, 19).replace(/[-:]/g, '') + 'Z';
}

/** The entombing time; null when the marker is missing, repeated or not a real time. */
export function markerTime(tags: Iterable<string>): Date | null {
  const dated = [...tags].filter((t) => t.startsWith(MARKERS.tombstone));
  if (dated.length !== 1) return null;
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec((dated[0] as string).slice(MARKERS.tombstone.length));
  if (!m) return null;
  const [y, mo, d, h, mi, s] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  const t = new Date(Date.UTC(y, mo - 1, d, h, mi, s));
  // Reject values Date silently rolls over (month 13, day 32, ...).
  if (t.getUTCFullYear() !== y || t.getUTCMonth() !== mo - 1 || t.getUTCDate() !== d || t.getUTCHours() !== h || t.getUTCMinutes() !== mi || t.getUTCSeconds() !== s) return null;
  return t;
}

/** Any tombstone tag, dated or not (an undated one still marks a tombstone the reaper must keep). */
export function isTombstoneMarker(tag: string): boolean {
  return isTombstoneTag(tag);
}

/** qubesd refuses to start a qube with this feature; a tombstone carries it with this value. */
export const START_HOLD = { feature: 'prohibit-start', value: 'qmcp: tombstone' } as const;
