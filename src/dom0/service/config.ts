/**
 * Operator settings as the dom0 services read them, turned into the runner's
 * ServiceConfig. The one place that knows the settings file's shape, so that
 * moving to the shared model's reader is one edit here.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isQubeName } from '../../shared/names.js';
import type { ServiceConfig } from './run.js';

/** Tags dom0 uses to mark state; never shown to the agent. */
export const INCOMPLETE_TAG = 'qmcp-incomplete';
/** A tombstone carries a tag starting with this (fixed or dated). */
export const TOMBSTONE_PREFIX = 'qmcp-tombstone';
export const OWNER_PREFIX = 'qmcp-owner-';

export function isTombstoneTag(tag: string): boolean {
  return tag.startsWith(TOMBSTONE_PREFIX);
}

export interface Settings {
  readonly principal: string;
  readonly mode: 'compat' | 'least-privilege';
  readonly tags: {
    readonly umbrella: string;
    readonly sink: string;
    readonly exec: string;
    readonly net: string;
    readonly full: string;
  };
  /** Cap on the umbrella's persistent footprint, bytes; null when unset or malformed. */
  readonly poolCap: number | null;
}

export const DEFAULT_SETTINGS: Settings = {
  principal: 'mcp-control',
  mode: 'least-privilege',
  tags: { umbrella: 'ai-managed', sink: 'ai-dump', exec: 'ai-exec', net: 'ai-net', full: 'ai-full' },
  poolCap: 50 * 1024 ** 3,
};

export function settingsPath(root: string): string {
  return join(root, 'etc', 'qmcp', 'settings.json');
}

const TAG = /^[a-zA-Z0-9_-]{1,31}$/;

/** A setting problem for the operator's journal; never for the agent. */
export type Warn = (message: string) => void;

/**
 * Reads the settings, falling back per setting to the restrictive choice.
 * Returns null when there is no usable principal or tag set: then every call
 * is refused.
 */
export function readSettings(root: string, warn: Warn): Settings | null {
  let text: string;
  try {
    text = readFileSync(settingsPath(root), 'utf8');
  } catch (err) {
    warn(`settings unreadable: ${(err as Error).message}`);
    return null;
  }
  return parseSettings(text, warn);
}

/** The settings file's text, read as readSettings reads it. */
export function parseSettings(text: string, warn: Warn): Settings | null {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    warn(`settings are not JSON: ${(err as Error).message}`);
    return null;
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    warn('settings are not a JSON object');
    return null;
  }
  const s = raw as Record<string, unknown>;
  if (!isQubeName(s['principal'])) {
    warn('settings: principal missing or not a qube name');
    return null;
  }
  const t = s['tags'] ?? DEFAULT_SETTINGS.tags;
  const names = ['umbrella', 'sink', 'exec', 'net', 'full'] as const;
  if (typeof t !== 'object' || t === null) {
    warn('settings: tags malformed');
    return null;
  }
  const tags = t as Record<string, unknown>;
  const values = names.map((n) => tags[n]);
  if (!values.every((v): v is string => typeof v === 'string' && TAG.test(v)) || new Set(values).size !== names.length) {
    warn('settings: tag names missing, malformed or not distinct');
    return null;
  }
  let mode: Settings['mode'] = 'least-privilege';
  if (s['mode'] === 'compat') mode = 'compat';
  else if (s['mode'] !== 'least-privilege') warn('settings: mode unreadable, using least-privilege');
  let poolCap: number | null = null;
  const cap = s['poolCapBytes'];
  if (typeof cap === 'number' && Number.isSafeInteger(cap) && cap > 0) poolCap = cap;
  else warn('settings: poolCapBytes missing or malformed, creates are refused');
  const [umbrella, sink, exec, net, full] = values as [string, string, string, string, string];
  return { principal: s['principal'], mode, tags: { umbrella, sink, exec, net, full }, poolCap };
}

/** The settings as a file's text, in the keys the readers use. */
export function renderSettings(settings: Settings): string {
  const { principal, mode, tags, poolCap } = settings;
  return JSON.stringify({ principal, mode, tags, ...(poolCap === null ? {} : { poolCapBytes: poolCap }) }, null, 2) + '\n';
}

export interface Dom0Config {
  readonly service: ServiceConfig;
  readonly settings: Settings;
}

/** The runner's configuration for one call under ROOT. */
export function loadDom0Config(root: string, warn: Warn): Dom0Config | null {
  const settings = readSettings(root, warn);
  if (!settings) return null;
  const { tags } = settings;
  return {
    settings,
    service: {
      principal: settings.principal,
      scope: {
        umbrella: tags.umbrella,
        sink: tags.sink,
        elevation: { exec: tags.exec, net: tags.net, full: tags.full },
        mode: settings.mode,
        hiding: [INCOMPLETE_TAG],
      },
      limits: { maxBytes: 64 * 1024, deadlineMs: 5000 },
      slotsDir: join(root, 'var', 'lib', 'qmcp', 'slots'),
      slotCount: 4,
    },
  };
}
