/** The read and lifecycle services' rows of the service table. */
import type { ServiceSpec } from '../service/run.js';
import { loadDom0Config } from '../service/config.js';
import type { Dom0Config } from '../service/config.js';
import type { ScopeRules } from '../service/snapshot.js';
import { deviceListService } from './device-list.js';
import { eventsService } from './events.js';
import { infoService } from './info.js';
import { listService } from './list.js';
import { poolFiguresService } from './pool-figures.js';
import { startService } from './start.js';

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

/** Each row keeps its own input type; the runner only passes parse's result back to handle. */
function row<I>(name: string, spec: ServiceSpec<I>): [string, ServiceSpec<unknown>] {
  return [name, spec as unknown as ServiceSpec<unknown>];
}

export function readServiceRows(deps: ReadDeps): [string, ServiceSpec<unknown>][] {
  return [
    row('qmcp.List', listService),
    row('qmcp.Info', infoService(deps.umbrella)),
    row('qmcp.Start', startService),
    row('qmcp.PoolFigures', poolFiguresService(deps.poolCap, deps.scope)),
    row('qmcp.DeviceList', deviceListService),
    row('qmcp.Events', eventsService(deps.scope)),
  ];
}
