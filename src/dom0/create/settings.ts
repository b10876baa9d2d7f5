/**
 * The operator settings the write services need, derived from the installed
 * settings (read fail-closed by the shared model, SPEC §4.13). Unusable
 * settings give the most restrictive reading: every create refused.
 */
import { OWNER_PREFIX, TOMBSTONE_PREFIX, loadDom0Config, scopeRules } from '../service/config.js';
import type { ScopeRules, Tier } from '../service/snapshot.js';
import { DEFAULT_SETTINGS, hasFatal, ownerTag, readPrincipalsFile, settingsPath } from '../../shared/model/index.js';
import type { QubeLimits, Settings } from '../../shared/model/settings.js';
import type { LeaseSettings } from '../../shared/model/lease.js';
import { RESERVED_FEATURES } from '../../shared/model/lease.js';

/** dom0's own marker tags; never visible to the agent. */
export const MARKERS = {
  /** Followed by the entombing time, e.g. qmcp-tombstone-20261123T203812Z. */
  tombstone: `${TOMBSTONE_PREFIX}-`,
  owner: OWNER_PREFIX,
  rollbackFailed: 'qmcp-rollback-failed',
} as const;

/** Features the agent may set, and a clone copies, before the operator's extensions. */
export const BASE_FEATURES: readonly string[] = ['gui', 'gui-allow-fullscreen', 'gui-allow-utf8-titles', 'menu-items', 'default-menu-items'];

export interface WriteSettings {
  readonly scope: ScopeRules;
  /** The tag that hides a qube until its creation is verified. */
  readonly incomplete: string;
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
  /** The most one qube may be given; null (malformed) refuses setting memory, maxmem and vcpus. */
  readonly qubeLimits: QubeLimits | null;
  /** How long created qubes live; null (malformed, or the settings unusable) refuses creates and renewals and ends no lease. */
  readonly lease: LeaseSettings | null;
}

const d = DEFAULT_SETTINGS;

/** Unusable settings: refuse every create, never reap. */
const UNUSABLE: WriteSettings = {
  scope: {
    umbrella: d.tags.umbrella,
    sink: d.tags.sink,
    elevation: { exec: d.tags.exec, net: d.tags.net, full: d.tags.full },
    mode: 'least-privilege',
    hiding: [d.tags.incomplete, TOMBSTONE_PREFIX],
  },
  incomplete: d.tags.incomplete,
  prefix: d.namePrefix,
  birthCeiling: 'read',
  egress: null,
  poolCap: null,
  privateCap: null,
  restrictionTags: null,
  propagatingTags: [],
  features: [],
  retentionDays: null,
  qubeLimits: null,
  lease: null,
};

/**
 * Reads ROOT's installed settings, CALLER's when the file holds several
 * principals; problems go to `warn` (the operator's journal), never to the agent.
 */
export function readWriteSettings(root: string, warn: (m: string) => void, caller?: string): WriteSettings {
  const config = loadDom0Config(root, warn, undefined, caller);
  return config ? writeSettingsOf(config.settings) : UNUSABLE;
}

/** Whether PRINCIPAL is one of the installed settings' principals (false when they do not read). */
export function isInstalledPrincipal(root: string, principal: string): boolean {
  const { principals, problems } = readPrincipalsFile(settingsPath(root));
  return !hasFatal(problems) && principals.list.some((s) => s.principal === principal);
}

/** What the write services need of one principal's settings. */
export function writeSettingsOf(s: Settings): WriteSettings {
  return {
    scope: scopeRules(s),
    incomplete: s.tags.incomplete,
    prefix: s.namePrefix,
    birthCeiling: s.birthCeiling,
    egress: s.egressQube,
    poolCap: s.poolCapBytes,
    privateCap: s.privateCapBytes,
    restrictionTags: s.restrictionTags,
    propagatingTags: s.propagatingTags,
    features: [...BASE_FEATURES, ...s.featureAllowlist].filter((f) => !RESERVED_FEATURES.includes(f)),
    retentionDays: s.tombstoneRetentionDays,
    qubeLimits: s.qubeLimits,
    lease: s.lease,
  };
}

/** One principal's world as a pass over the whole machine (the reaper's) covers it. */
export interface World {
  /** The principal qube; null when the settings are unusable (the pass then refuses). */
  readonly principal: string | null;
  readonly settings: WriteSettings;
  /** With several principals, the owner tag that puts a tombstone or a leased qube in this world. */
  readonly owner?: string;
}

/**
 * Each world a pass over the machine covers, in the settings' order (ONLY:
 * those of these principals). A single principal's pass covers every
 * tombstone and leased qube, as before there were several.
 */
export function readWorlds(root: string, warn: (m: string) => void, only?: readonly string[]): World[] {
  const { principals, problems } = readPrincipalsFile(settingsPath(root));
  const names = hasFatal(problems) ? [] : principals.list.map((s) => s.principal).filter((n) => only === undefined || only.includes(n));
  if (names.length === 0) return [{ principal: null, settings: readWriteSettings(root, warn) }];
  const several = principals.list.length > 1;
  // the file's problems are told once, not once per principal
  return names.map((n, i) => ({ principal: n, settings: readWriteSettings(root, i === 0 ? warn : () => undefined, n), ...(several ? { owner: ownerTag(n) } : {}) }));
}
