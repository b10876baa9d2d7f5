/**
 * Operator settings: one JSON file, read fail-closed (SPEC §4.13). A missing
 * or malformed value never grants more; what was wrong goes to `problems`,
 * which are for the operator only.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { GateAnswer, Tier } from './capabilities.js';
import { OPERATIONS, TIERS } from './capabilities.js';
import type { LeaseSettings } from './lease.js';
import { NO_LEASE, RESERVED_FEATURES, parseLease } from './lease.js';

export type Mode = 'compat' | 'least-privilege';

export interface TagNames {
  umbrella: string;
  exec: string;
  net: string;
  full: string;
  sink: string;
  /** Set by the create services until a new qube is complete; denied before every allow. */
  incomplete: string;
}

export interface Settings {
  principal: string;
  tags: TagNames;
  mode: Mode;
  namePrefix: string;
  /** The agent's egress qube; null refuses creates from templates and agent template updates. */
  egressQube: string | null;
  /** Bytes; null refuses creates. */
  poolCapBytes: number | null;
  /** Bytes; null refuses creates. */
  privateCapBytes: number | null;
  birthCeiling: Tier;
  /** Days; null never reaps. */
  tombstoneRetentionDays: number | null;
  featureAllowlist: string[];
  propagatingTags: string[];
  /** Operator tags every child inherits unconditionally; null when malformed (creates refused). */
  restrictionTags: string[] | null;
  /**
   * The operator's answers per operation id, over the model's defaults
   * (docs/action-gate.md); null when malformed: every gated-capable
   * operation asks.
   */
  gate: Record<string, GateAnswer> | null;
  /** Seconds a gated call waits for the operator before it is refused. */
  approvalDeadlineSeconds: number;
  /** Requests of the principal waiting at once; one more is refused. */
  approvalPendingCap: number;
  /** The most one qube may be given (memory and maxmem in MiB, vcpus); null when malformed (those properties cannot be set). */
  qubeLimits: QubeLimits | null;
  /** Calls each caller may make into dom0's services: the refill per second and the bucket (docs/threat-model.md, the flood). */
  rate: RateSettings;
  /** The audit log's rotation size and what rotated files are kept. */
  auditRetention: AuditRetention;
  /** How long created qubes live; null when malformed (creates, renewals and expiry refused). */
  lease: LeaseSettings | null;
  /** The model hash the installer wrote; null when absent. */
  model: string | null;
}

/** What the host can give one qube: the bounds of memory, maxmem and vcpus the agent may set. */
export interface QubeLimits {
  memoryMiB: number;
  vcpus: number;
}

export interface RateSettings {
  perSecond: number;
  burst: number;
}

export interface AuditRetention {
  /** The live file is rotated once it reaches this. */
  fileBytes: number;
  /** Rotated files are pruned, oldest first, while together larger than this; null: no bound. */
  keepBytes: number | null;
  /** Rotated files whose newest entry is older than this are pruned; null: no bound. */
  keepDays: number | null;
}

export interface SettingsProblem {
  key: string;
  message: string;
  /** A problem no restrictive fallback can cover: render and services refuse. */
  fatal: boolean;
}

/** Where the file lives, under a root so `--root DIR` works. */
export const SETTINGS_PATH = 'etc/qmcp/settings.json';

export function settingsPath(root: string): string {
  return join(root, SETTINGS_PATH);
}

const QUBE_NAME = /^[a-zA-Z][a-zA-Z0-9_.-]{0,30}$/;
const TAG_NAME = /^[a-zA-Z0-9_-]{1,64}$/;
const PREFIX = /^[a-z][a-z0-9-]{0,15}$/;
const FEATURE_NAME = /^[a-zA-Z0-9_.-]{1,64}$/;

export function isQubeName(s: unknown): s is string {
  return typeof s === 'string' && QUBE_NAME.test(s) && s !== 'dom0' && !s.endsWith('.') && s !== 'default' && s !== 'none';
}

export function isTagName(s: unknown): s is string {
  return typeof s === 'string' && TAG_NAME.test(s);
}

function isPositiveSafeInteger(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v > 0;
}

/** One row of the settings table: its default and its fail-closed reading. */
export interface SettingDoc {
  key: string;
  description: string;
  default: string;
  failClosed: string;
}

export const DEFAULT_SETTINGS: Settings = {
  principal: 'mcp-control',
  tags: { umbrella: 'ai-managed', exec: 'ai-exec', net: 'ai-net', full: 'ai-full', sink: 'ai-dump', incomplete: 'qmcp-incomplete' },
  mode: 'least-privilege',
  namePrefix: 'ai-',
  egressQube: null,
  poolCapBytes: null,
  privateCapBytes: null,
  birthCeiling: 'read',
  tombstoneRetentionDays: 7,
  featureAllowlist: [],
  propagatingTags: [],
  restrictionTags: [],
  gate: {},
  approvalDeadlineSeconds: 120,
  approvalPendingCap: 4,
  // Qubes' own defaults for a qube: maxmem at most 4000 MiB, 2 vcpus
  qubeLimits: { memoryMiB: 4096, vcpus: 2 },
  rate: { perSecond: 20, burst: 200 },
  auditRetention: { fileBytes: 16 * 1024 * 1024, keepBytes: 512 * 1024 * 1024, keepDays: null },
  lease: NO_LEASE,
  model: null,
};

/** Bounds of the rate settings; a malformed one reads as the lowest (fail-closed: fewer calls, never more). */
export const RATE_RANGE = { perSecond: { min: 1, max: 10_000 }, burst: { min: 10, max: 100_000 } } as const;
/** Bounds of the rotation size (a file ends with the line that passed it, so any size holds whole lines). */
export const AUDIT_FILE_RANGE = { min: 1024, max: 1024 * 1024 * 1024 } as const;

/** Bounds of the approval settings; a deadline stays under the principal's own call timeout. */
export const APPROVAL_DEADLINE_RANGE = { min: 10, max: 240 } as const;
export const APPROVAL_PENDING_RANGE = { min: 1, max: 16 } as const;

export const SETTINGS_DOC: readonly SettingDoc[] = [
  { key: 'principal', description: 'the qube the MCP server runs in', default: 'mcp-control', failClosed: 'nothing rendered or served (fatal)' },
  { key: 'tags.umbrella / exec / net / full / sink / incomplete', description: 'tag names', default: 'ai-managed / ai-exec / ai-net / ai-full / ai-dump / qmcp-incomplete', failClosed: 'nothing rendered or served (fatal); two roles may not share a name' },
  { key: 'mode', description: 'compat (untiered = full) or least-privilege (untiered = read)', default: 'least-privilege', failClosed: 'least-privilege' },
  { key: 'namePrefix', description: 'reserved prefix of qube names the agent may create', default: 'ai-', failClosed: 'ai- (never empty)' },
  { key: 'egressQube', description: 'netvm of created qubes and update proxy of agent templates', default: 'none', failClosed: 'none: creates from templates refused, no update proxy' },
  { key: 'poolCapBytes', description: 'total bytes of agent qubes in the pool', default: 'none', failClosed: 'none: creates refused' },
  { key: 'privateCapBytes', description: 'private volume cap of one created qube', default: 'none', failClosed: 'none: creates refused' },
  { key: 'birthCeiling', description: 'highest tier a created qube is born with', default: 'read', failClosed: 'read (untiered)' },
  { key: 'tombstoneRetentionDays', description: 'days a removed qube is kept before reaping', default: '7', failClosed: 'never reap' },
  { key: 'featureAllowlist', description: 'features the agent may set beyond the built-in allowlist', default: '[]', failClosed: '[] (internal and qmcp-lease-expires are never allowed)' },
  { key: 'propagatingTags', description: 'operator tags copied to qubes created from a tagged source', default: '[]', failClosed: '[]' },
  { key: 'restrictionTags', description: 'operator tags (egress locks, guards) every created qube inherits from its source', default: '[]', failClosed: 'malformed: creates refused' },
  { key: 'gate', description: 'per operation id, `allow` or `ask` (wait for the operator\'s approval in dom0), over the model\'s defaults', default: '{} (the model\'s defaults: ask for what can lose more than a qube\'s own files or widen exposure)', failClosed: 'any malformed entry: every operation that can be gated asks' },
  { key: 'approvalDeadlineSeconds', description: 'how long a gated call waits for the operator before it is refused', default: '120', failClosed: `malformed or outside ${APPROVAL_DEADLINE_RANGE.min}..${APPROVAL_DEADLINE_RANGE.max}: ${APPROVAL_DEADLINE_RANGE.min}` },
  { key: 'approvalPendingCap', description: 'requests of the principal waiting for the operator at once', default: '4', failClosed: `malformed or outside ${APPROVAL_PENDING_RANGE.min}..${APPROVAL_PENDING_RANGE.max}: ${APPROVAL_PENDING_RANGE.min}` },
  { key: 'qubeLimits', description: 'the most the host gives one qube: `{memoryMiB, vcpus}`, the bounds of the memory, maxmem and vcpus the agent may set', default: '{"memoryMiB": 4096, "vcpus": 2}', failClosed: 'malformed: memory, maxmem and vcpus cannot be set' },
  { key: 'rate.perSecond / rate.burst', description: 'calls per second each caller may make into the dom0 services on average, and at once after a quiet spell; one more gets the refusal without any other work', default: `${DEFAULT_SETTINGS.rate.perSecond} / ${DEFAULT_SETTINGS.rate.burst}`, failClosed: `malformed or outside ${RATE_RANGE.perSecond.min}..${RATE_RANGE.perSecond.max} / ${RATE_RANGE.burst.min}..${RATE_RANGE.burst.max}: ${RATE_RANGE.perSecond.min} / ${RATE_RANGE.burst.min}` },
  { key: 'auditRetention.fileBytes / keepBytes / keepDays', description: 'audit log rotation size; rotated files kept by total size and by age (null: no bound), each pruned file leaving a checkpoint', default: '16 MiB / 512 MiB / null', failClosed: 'malformed: rotate at 16 MiB and prune nothing' },
  { key: 'lease', description: 'how long a qube the agent creates lives: `{"default", "max"}`, each `"none"`, seconds, or a number with s, m, h or d (`"8h"`); the agent may ask for less than the default at creation and renew up to the maximum from now; the default may not exceed the maximum', default: '{"default": "none", "max": "none"} (nothing expires)', failClosed: 'malformed: creates and renewals refused, and nothing expires until it is fixed' },
  { key: 'model', description: 'model hash written by the installer', default: 'current model', failClosed: 'mismatch: services refuse' },
  { key: 'principals', description: 'several agents on one machine (docs/principals.md): one entry per principal with the keys above but `qubeLimits`, `rate`, `auditRetention` and `model`, which stay at the top; `qmcp dom0 principal add` and `remove` edit it', default: 'absent: the file holds one principal', failClosed: 'empty or malformed, or any overlap between two worlds: nothing rendered or served (fatal)' },
  { key: 'shared.egressQubes / shared.sinks', description: 'what two principals share, one way: an egress qube both name; `{from, into, tag}` lets the agents of `from` push into the sinks of `into` tagged `tag`', default: '[] / []', failClosed: 'malformed, a stranger named or a tag of some world: nothing rendered or served (fatal)' },
];

export interface SettingsReading {
  settings: Settings;
  problems: SettingsProblem[];
}

/** Reads the settings file under ROOT; a missing or unreadable file reads as `{}` with a problem. */
export function readSettingsFile(path: string): SettingsReading {
  return readJsonSettings(path, parseSettings);
}

/** PARSE over the file at PATH; a file that cannot be read or is not JSON is parsed as `{}`, with a problem first. */
export function readJsonSettings<R extends { problems: SettingsProblem[] }>(path: string, parse: (json: unknown) => R): R {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const r = parse({});
    r.problems.unshift({ key: '', message: `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, fatal: false });
    return r;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    const r = parse({});
    r.problems.unshift({ key: '', message: `${path} is not JSON`, fatal: false });
    return r;
  }
  return parse(json);
}

/** Keys of the list form (src/shared/model/principals.ts): a reader of one principal refuses a file that holds several. */
export const LIST_KEYS = ['principals', 'shared'] as const;

export const SETTINGS_KEYS: readonly string[] = ['principal', 'tags', 'mode', 'namePrefix', 'egressQube', 'poolCapBytes', 'privateCapBytes', 'birthCeiling', 'tombstoneRetentionDays', 'featureAllowlist', 'propagatingTags', 'restrictionTags', 'gate', 'approvalDeadlineSeconds', 'approvalPendingCap', 'qubeLimits', 'rate', 'auditRetention', 'lease', 'model'];
const KEYS = new Set(SETTINGS_KEYS);
export const TAG_ROLES: readonly (keyof TagNames)[] = ['umbrella', 'exec', 'net', 'full', 'sink', 'incomplete'];

/**
 * Settings from parsed JSON. Absent keys take the fail-closed value (for
 * the principal and tags, the default), which is also the documented default
 * except for mode, caps and retention, which the installer writes explicitly.
 */
export function parseSettings(json: unknown): SettingsReading {
  const problems: SettingsProblem[] = [];
  const bad = (key: string, message: string, fatal = false): void => {
    problems.push({ key, message, fatal });
  };
  const s: Settings = structuredClone(DEFAULT_SETTINGS);
  // Fail-closed values where they differ from the documented defaults.
  s.tombstoneRetentionDays = null;
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    bad('', 'settings must be a JSON object');
    return { settings: s, problems };
  }
  const o = json as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    // served as one principal, a list would leave every other principal's world unguarded
    if ((LIST_KEYS as readonly string[]).includes(k)) bad(k, 'several principals: read this file with the principals reader', true);
    else if (!KEYS.has(k)) bad(k, 'unknown setting');
  }

  if ('principal' in o) {
    if (isQubeName(o['principal'])) s.principal = o['principal'];
    else bad('principal', 'not a qube name', true);
  }
  if ('tags' in o) {
    const t = o['tags'];
    if (typeof t !== 'object' || t === null || Array.isArray(t)) bad('tags', 'must be an object', true);
    else {
      for (const [role, v] of Object.entries(t as Record<string, unknown>)) {
        if (!(TAG_ROLES as readonly string[]).includes(role)) bad(`tags.${role}`, 'unknown tag role', true);
        else if (!isTagName(v)) bad(`tags.${role}`, 'not a tag name', true);
        else s.tags[role as keyof TagNames] = v;
      }
    }
  }
  if (new Set(TAG_ROLES.map((r) => s.tags[r])).size !== TAG_ROLES.length) bad('tags', 'two tag roles share a name', true);

  if (!('mode' in o)) bad('mode', 'absent: least-privilege');
  else if (o['mode'] === 'compat' || o['mode'] === 'least-privilege') s.mode = o['mode'];
  else bad('mode', 'must be compat or least-privilege: least-privilege');

  if ('namePrefix' in o) {
    const p = o['namePrefix'];
    if (typeof p === 'string' && PREFIX.test(p)) s.namePrefix = p;
    else bad('namePrefix', `not a name prefix: ${DEFAULT_SETTINGS.namePrefix}`);
  }
  if ('egressQube' in o && o['egressQube'] !== null) {
    if (isQubeName(o['egressQube'])) s.egressQube = o['egressQube'];
    else bad('egressQube', 'not a qube name: none');
  }
  for (const key of ['poolCapBytes', 'privateCapBytes'] as const) {
    if (!(key in o) || o[key] === null) bad(key, 'absent: creates refused');
    else if (isPositiveSafeInteger(o[key])) s[key] = o[key];
    else bad(key, 'must be a positive safe integer: creates refused');
  }
  if ('birthCeiling' in o) {
    const b = o['birthCeiling'];
    if (typeof b === 'string' && (TIERS as readonly string[]).includes(b)) s.birthCeiling = b as Tier;
    else bad('birthCeiling', 'not a tier: read');
  }
  if (!('tombstoneRetentionDays' in o)) bad('tombstoneRetentionDays', 'absent: never reap');
  else if (isPositiveSafeInteger(o['tombstoneRetentionDays'])) s.tombstoneRetentionDays = o['tombstoneRetentionDays'];
  else bad('tombstoneRetentionDays', 'must be a positive safe integer: never reap');

  for (const key of ['featureAllowlist', 'propagatingTags'] as const) {
    if (!(key in o)) continue;
    const v = o[key];
    const ok = key === 'featureAllowlist' ? (x: unknown): x is string => typeof x === 'string' && FEATURE_NAME.test(x) && !RESERVED_FEATURES.includes(x) : isTagName;
    if (Array.isArray(v) && v.every(ok)) s[key] = [...(v as string[])];
    else bad(key, 'must be a list of names: []');
  }
  if ('restrictionTags' in o) {
    const v = o['restrictionTags'];
    if (Array.isArray(v) && v.every(isTagName) && !v.some((t) => TAG_ROLES.some((r) => s.tags[r] === t))) s.restrictionTags = [...(v as string[])];
    else {
      bad('restrictionTags', 'must be a list of operator tag names: creates refused');
      s.restrictionTags = null;
    }
  }
  if (s.propagatingTags.some((t) => TAG_ROLES.some((r) => s.tags[r] === t))) {
    bad('propagatingTags', 'may not list a qmcp tag: []');
    s.propagatingTags = [];
  }
  if ('gate' in o) {
    const g = parseGate(o['gate']);
    if (typeof g === 'string') {
      bad('gate', `${g}: every operation that can be gated asks`);
      s.gate = null;
    } else s.gate = g;
  }
  for (const [key, range] of [['approvalDeadlineSeconds', APPROVAL_DEADLINE_RANGE], ['approvalPendingCap', APPROVAL_PENDING_RANGE]] as const) {
    if (!(key in o)) continue;
    const v = o[key];
    if (isPositiveSafeInteger(v) && v >= range.min && v <= range.max) s[key] = v;
    else {
      bad(key, `must be an integer from ${range.min} to ${range.max}: ${range.min}`);
      s[key] = range.min;
    }
  }
  if ('qubeLimits' in o) {
    const v = parseQubeLimits(o['qubeLimits']);
    if (v === null) bad('qubeLimits', 'must be {"memoryMiB": N, "vcpus": N} with positive integers: memory, maxmem and vcpus cannot be set');
    s.qubeLimits = v;
  }
  if ('rate' in o) s.rate = parseRate(o['rate'], bad);
  if ('auditRetention' in o) s.auditRetention = parseRetention(o['auditRetention'], bad);
  if ('lease' in o) {
    const v = parseLease(o['lease']);
    if (typeof v === 'string') {
      bad('lease', `${v}: creates, renewals and expiry refused`);
      s.lease = null;
    } else s.lease = v;
  }
  if ('model' in o) {
    if (typeof o['model'] === 'string' && /^[0-9a-f]{64}$/.test(o['model'])) s.model = o['model'];
    else bad('model', 'not a model hash');
  }
  return { settings: s, problems };
}

/** Bounds past any host Qubes runs on: a larger figure is a typo, not a host. */
const LIMIT_MAX = { memoryMiB: 1 << 24, vcpus: 4096 } as const;

function parseQubeLimits(v: unknown): QubeLimits | null {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return null;
  const o = v as Record<string, unknown>;
  if (Object.keys(o).some((k) => k !== 'memoryMiB' && k !== 'vcpus')) return null;
  const { memoryMiB, vcpus } = o;
  if (!isPositiveSafeInteger(memoryMiB) || memoryMiB > LIMIT_MAX.memoryMiB) return null;
  if (!isPositiveSafeInteger(vcpus) || vcpus > LIMIT_MAX.vcpus) return null;
  return { memoryMiB, vcpus };
}

function isIntegerIn(v: unknown, range: { readonly min: number; readonly max: number }): v is number {
  return isPositiveSafeInteger(v) && v >= range.min && v <= range.max;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Both members or neither: half a rate is read as the lowest. */
function parseRate(v: unknown, bad: (key: string, message: string) => void): RateSettings {
  const lowest = { perSecond: RATE_RANGE.perSecond.min, burst: RATE_RANGE.burst.min };
  if (!isObject(v) || Object.keys(v).some((k) => k !== 'perSecond' && k !== 'burst')) {
    bad('rate', `must be {perSecond, burst}: ${lowest.perSecond} / ${lowest.burst}`);
    return lowest;
  }
  if (!isIntegerIn(v['perSecond'], RATE_RANGE.perSecond) || !isIntegerIn(v['burst'], RATE_RANGE.burst)) {
    bad('rate', `perSecond must be an integer from ${RATE_RANGE.perSecond.min} to ${RATE_RANGE.perSecond.max} and burst from ${RATE_RANGE.burst.min} to ${RATE_RANGE.burst.max}: ${lowest.perSecond} / ${lowest.burst}`);
    return lowest;
  }
  return { perSecond: v['perSecond'], burst: v['burst'] };
}

/** Anything malformed keeps every file: a misread setting never deletes audit records. */
function parseRetention(v: unknown, bad: (key: string, message: string) => void): AuditRetention {
  const keepAll = { fileBytes: DEFAULT_SETTINGS.auditRetention.fileBytes, keepBytes: null, keepDays: null };
  const known = ['fileBytes', 'keepBytes', 'keepDays'];
  if (!isObject(v) || Object.keys(v).some((k) => !known.includes(k))) {
    bad('auditRetention', 'must be {fileBytes, keepBytes, keepDays}: nothing pruned');
    return keepAll;
  }
  const fileBytes = v['fileBytes'] ?? keepAll.fileBytes;
  const keepBytes = v['keepBytes'] ?? null;
  const keepDays = v['keepDays'] ?? null;
  if (!isIntegerIn(fileBytes, AUDIT_FILE_RANGE) || (keepBytes !== null && !isPositiveSafeInteger(keepBytes)) || (keepDays !== null && !isPositiveSafeInteger(keepDays))) {
    bad('auditRetention', `fileBytes must be an integer from ${AUDIT_FILE_RANGE.min} to ${AUDIT_FILE_RANGE.max}, keepBytes and keepDays positive integers or null: nothing pruned`);
    return keepAll;
  }
  return { fileBytes, keepBytes, keepDays };
}

/** The gate object, or what is wrong with it. */
function parseGate(v: unknown): Record<string, GateAnswer> | string {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'must be an object';
  const out: Record<string, GateAnswer> = {};
  for (const [id, answer] of Object.entries(v as Record<string, unknown>)) {
    const op = OPERATIONS.find((o) => o.id === id);
    if (op === undefined) return `${JSON.stringify(id).slice(0, 80)} is not an operation`;
    if (op.gate === null) return `${id} is never gated`;
    if (answer !== 'allow' && answer !== 'ask') return `${id} must be allow or ask`;
    out[id] = answer;
  }
  return out;
}

/** True when a problem leaves nothing safe to render or serve. */
export function hasFatal(problems: readonly SettingsProblem[]): boolean {
  return problems.some((p) => p.fatal);
}
