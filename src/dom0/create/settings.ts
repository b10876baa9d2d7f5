/**
 * The operator settings the write services need, read fail-closed (SPEC
 * §4.13). This is the one adapter to the settings reader: when the shared
 * model's reader exists, only this file changes.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isQubeName } from '../../shared/names.js';
import { INCOMPLETE_TAG, OWNER_PREFIX, TOMBSTONE_PREFIX, readSettings } from '../service/config.js';
import type { ScopeRules, Tier } from '../service/snapshot.js';
import { TIERS } from '../service/snapshot.js';

/** dom0's own marker tags; never visible to the agent. */
export const MARKERS = {
  incomplete: INCOMPLETE_TAG,
  /** Followed by the entombing time, e.g. qmcp-tombstone-20261123T203812Z. */
  tombstone: `${TOMBSTONE_PREFIX}-`,
  owner: OWNER_PREFIX,
  rollbackFailed: 'qmcp-rollback-failed',
} as const;

export interface WriteSettings {
  readonly scope: ScopeRules;
  /** Names the agent may give new qubes start with this. */
  readonly prefix: string;
  /** The highest tier a created qube may be born with ('read' = untiered). */
  readonly birthCeiling: Tier;
  /** The principal's egress qube for qubes made from a template; null refuses those creates. */
  readonly egress: string | null;
  /** Cap on the umbrella's persistent footprint, bytes; null refuses creates. */
  readonly poolCap: number | null;
  /** Cap on one qube's private volume, bytes; null refuses creates. */
  readonly privateCap: number | null;
  /** Tags every child inherits unconditionally; null (malformed) refuses creates. */
  readonly restrictionTags: readonly string[] | null;
  /** Operator tags a clone keeps. */
  readonly propagatingTags: readonly string[];
  /** Features the agent may set and a clone copies. */
  readonly features: readonly string[];
  /** Days a tombstone is kept; null never reaps. */
  readonly retentionDays: number | null;
}

const TAG = /^[a-zA-Z0-9_-]{1,64}$/;
const FEATURE = /^[a-zA-Z0-9_.-]{1,64}$/;
export const DEFAULT_PREFIX = 'ai-';
const DEFAULT_RETENTION_DAYS = 7;
const DEFAULT_FEATURES = ['gui', 'gui-allow-fullscreen', 'gui-allow-utf8-titles', 'menu-items', 'default-menu-items'];

export const DEFAULT_SCOPE: ScopeRules = {
  umbrella: 'ai-managed',
  sink: 'ai-dump',
  elevation: { exec: 'ai-exec', net: 'ai-net', full: 'ai-full' },
  mode: 'least-privilege',
  hiding: [MARKERS.incomplete],
};

/** The keys this file adds to the settings file, with the values install writes by default. */
export const DEFAULT_WRITE_KEYS = {
  prefix: DEFAULT_PREFIX,
  birthCeiling: 'exec',
  egress: null,
  privateCapBytes: 20 * 1024 ** 3,
  restrictionTags: [] as string[],
  propagatingTags: [] as string[],
  features: DEFAULT_FEATURES,
  retentionDays: DEFAULT_RETENTION_DAYS,
};

function settingsPath(root: string): string {
  return join(root, 'etc', 'qmcp', 'settings.json');
}

function isSafePositive(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v > 0;
}

function tagList(v: unknown): string[] | null {
  return Array.isArray(v) && v.every((t) => typeof t === 'string' && TAG.test(t)) ? (v as string[]) : null;
}

/**
 * Reads ROOT/etc/qmcp/settings.json. Every setting falls back on its own to
 * the restrictive choice when it is missing or malformed, and the reason goes
 * to `warn` (the operator's journal), never to the agent.
 */
export function readWriteSettings(root: string, warn: (m: string) => void): WriteSettings {
  const base = readSettings(root, warn);
  let raw: Record<string, unknown> | null = null;
  try {
    const parsed: unknown = JSON.parse(readFileSync(settingsPath(root), 'utf8'));
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) raw = parsed as Record<string, unknown>;
    else warn('settings: not a JSON object; restrictive defaults');
  } catch (err) {
    warn(`settings: unreadable (${(err as Error).message}); restrictive defaults`);
  }
  const r = raw ?? {};
  const bad = (key: string): void => warn(`settings: ${key} malformed; restrictive choice`);

  let prefix = DEFAULT_PREFIX;
  if (r['prefix'] !== undefined) {
    if (typeof r['prefix'] === 'string' && /^[a-z][a-z0-9-]{0,15}$/.test(r['prefix'])) prefix = r['prefix'];
    else bad('prefix');
  }

  let birthCeiling: Tier = 'read';
  if (r['birthCeiling'] !== undefined) {
    if (typeof r['birthCeiling'] === 'string' && (TIERS as readonly string[]).includes(r['birthCeiling'])) birthCeiling = r['birthCeiling'] as Tier;
    else bad('birthCeiling');
  }

  let egress: string | null = null;
  if (typeof r['egress'] === 'string' && isQubeName(r['egress'])) egress = r['egress'];
  else if (r['egress'] !== undefined && r['egress'] !== null) bad('egress');

  const cap = (key: string): number | null => {
    if (isSafePositive(r[key])) return r[key] as number;
    if (r[key] !== undefined) bad(key);
    return null;
  };

  const list = (key: string, fallback: string[]): string[] => {
    if (r[key] === undefined) return fallback;
    const l = tagList(r[key]);
    if (!l) bad(key);
    return l ?? [];
  };
  // A malformed restriction list cannot be dropped silently: it would free children of their guards.
  const restrictionTags = r['restrictionTags'] === undefined ? [] : tagList(r['restrictionTags']);
  if (r['restrictionTags'] !== undefined && !restrictionTags) bad('restrictionTags');

  let features = DEFAULT_FEATURES;
  if (r['features'] !== undefined) {
    const f = r['features'];
    if (Array.isArray(f) && f.every((x) => typeof x === 'string' && FEATURE.test(x))) features = f as string[];
    else {
      bad('features');
      features = [];
    }
  }

  let retentionDays: number | null = raw && base ? DEFAULT_RETENTION_DAYS : null;
  if (r['retentionDays'] !== undefined) {
    if (isSafePositive(r['retentionDays'])) retentionDays = r['retentionDays'];
    else {
      bad('retentionDays');
      retentionDays = null;
    }
  }

  const scope: ScopeRules = base
    ? {
        ...DEFAULT_SCOPE,
        umbrella: base.tags.umbrella,
        sink: base.tags.sink,
        elevation: { exec: base.tags.exec, net: base.tags.net, full: base.tags.full },
        mode: base.mode,
      }
    : DEFAULT_SCOPE;
  return {
    scope,
    prefix,
    birthCeiling,
    egress,
    poolCap: base ? base.poolCap : null,
    privateCap: cap('privateCapBytes'),
    restrictionTags,
    propagatingTags: list('propagatingTags', []),
    features: features.filter((f) => f !== 'internal'),
    retentionDays,
  };
}
