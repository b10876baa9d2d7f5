/**
 * The installed settings as the dom0 services read them, turned into the
 * runner's ServiceConfig. Settings are read fail-closed by the shared model;
 * a fatal problem, or a policy and settings pair that this model did not
 * render together, makes every call refuse.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { POLICY_FILE, TOMBSTONE_PREFIX, checkInstalledModel, hasFatal, principalsDigest, readPrincipalsFile, settingsPath, worldTags } from '../../shared/model/index.js';
import type { PrincipalsReading, Settings } from '../../shared/model/index.js';
import { approvalsDir } from '../gate/store.js';
import type { ServiceConfig } from './run.js';
import type { ScopeRules } from './snapshot.js';

export { OWNER_PREFIX, TOMBSTONE_PREFIX } from '../../shared/model/index.js';

export function isTombstoneTag(tag: string): boolean {
  return tag.startsWith(TOMBSTONE_PREFIX);
}

/** A setting problem for the operator's journal; never for the agent. */
export type Warn = (message: string) => void;

export interface Dom0Config {
  readonly service: ServiceConfig;
  readonly settings: Settings;
}

export function policyPath(root: string): string {
  return join(root, 'etc', 'qubes', 'policy.d', POLICY_FILE);
}

/** What decides visibility and tier, from the settings. */
export function scopeRules(settings: Settings): ScopeRules {
  const { tags } = settings;
  return {
    umbrella: tags.umbrella,
    sink: tags.sink,
    elevation: { exec: tags.exec, net: tags.net, full: tags.full },
    mode: settings.mode,
    hiding: [tags.incomplete, TOMBSTONE_PREFIX],
  };
}

/**
 * Checks the installed settings (READING, when the call has read them
 * already) against the installed policy, and picks the principal whose qube
 * CALLER is: every guard of the call is then scoped to that principal's
 * world. A caller that is no principal gets the first one's, which the
 * runner refuses; without a caller only a file of one principal serves.
 * Null refuses every call.
 */
export function loadDom0Config(root: string, warn: Warn, reading: PrincipalsReading = readPrincipalsFile(settingsPath(root)), caller?: string): Dom0Config | null {
  const { principals, problems } = reading;
  for (const p of problems) warn(`settings: ${p.key || 'file'}: ${p.message}`);
  if (hasFatal(problems)) return null;
  const settings = principals.list.find((s) => s.principal === caller) ?? principals.list[0];
  if (settings === undefined) return null;
  if (caller === undefined && principals.list.length > 1) {
    warn('settings: several principals, and this path does not know whose call it serves');
    return null;
  }
  let policy: string;
  try {
    policy = readFileSync(policyPath(root), 'utf8');
  } catch (err) {
    warn(`installed policy unreadable: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
    return null;
  }
  const check = checkInstalledModel(policy, settings, principalsDigest(principals));
  if (!check.ok) {
    for (const p of check.problems) warn(`model check: ${p}`);
    return null;
  }
  const scope = scopeRules(settings);
  // a qube tagged into another world too is in neither, for the services as for the policy
  const others = principals.list.filter((s) => s !== settings).flatMap(worldTags);
  return {
    settings,
    service: {
      principal: settings.principal,
      scope: { ...scope, hiding: [...scope.hiding, ...others] },
      limits: { maxBytes: 64 * 1024, deadlineMs: 5000 },
      slotsDir: join(root, 'var', 'lib', 'qmcp', 'slots'),
      slotCount: 4,
      settings,
      approvalsDir: approvalsDir(root),
    },
  };
}
