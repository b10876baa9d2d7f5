/** The read services' dependencies, from the operator's settings. */
import { loadDom0Config } from '../service/config.js';
import type { Dom0Config } from '../service/config.js';
import type { ScopeRules } from '../service/snapshot.js';

/** What the read services take from the settings. */
export interface ReadDeps {
  readonly umbrella: string;
  readonly poolCap: number | null;
  /** For tracking the visible set while an event window is open. */
  readonly scope: ScopeRules;
}

/** From the settings under QMCP_ROOT; unusable settings refuse in the runner before any handler runs. */
export function processReadDeps(env: NodeJS.ProcessEnv = process.env): ReadDeps {
  const config = loadDom0Config(env['QMCP_ROOT'] || '/', () => undefined);
  return config ? readDeps(config) : UNUSABLE;
}

/** Unusable settings: the runner refuses before these are used. */
const UNUSABLE: ReadDeps = {
  umbrella: '',
  poolCap: null,
  scope: { umbrella: '', sink: '', elevation: { exec: '', net: '', full: '' }, mode: 'least-privilege', hiding: [] },
};

export function readDeps(config: Dom0Config | null): ReadDeps {
  if (!config) return UNUSABLE;
  return { umbrella: config.settings.tags.umbrella, poolCap: config.settings.poolCapBytes, scope: config.service.scope };
}
