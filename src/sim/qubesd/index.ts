/** The simulated qubesd: state, the Admin API socket and the internal socket. */
import { join } from 'node:path';
import type { PowerHooks } from './app.js';
import { SimApp } from './app.js';
import { internalMethods } from './internal.js';
import { adminMethods } from './methods/index.js';
import { miscMethods } from './misc.js';
import type { ApiServer } from './server.js';
import { listenApi } from './server.js';
import type { HostState } from './state.js';
import { readStateFile } from './state.js';

export type { PowerHooks } from './app.js';
export { SimApp } from './app.js';
export { StateFileError } from './state.js';

export interface QubesdOptions {
  /** The host directory: DIR/qubesd.sock, DIR/qubesd.internal.sock, DIR/qubesd.misc.sock, DIR/state/qubes.json, policy under DIR/dom0. */
  readonly dir: string;
  /** Used only when DIR holds no state yet. */
  readonly seed?: () => HostState;
  readonly hooks?: PowerHooks;
  /** Whether each save of the state waits for the disk (default true); a machine thrown away after a check need not. */
  readonly durable?: boolean;
  /**
   * Whether the state is written only when qubesd closes, not at each
   * change: a machine no one restarts while it runs, whose every change
   * would otherwise rewrite the whole file.
   */
  readonly stateAtClose?: boolean;
}

export interface Qubesd {
  readonly app: SimApp;
  readonly socketPath: string;
  readonly internalSocketPath: string;
  /** qubesd's misc API (qubes.NotifyUpdates), which dom0's qrexec service scripts call. */
  readonly miscSocketPath: string;
  readonly statePath: string;
  close(): Promise<void>;
}

export function qubesdPaths(dir: string): { socket: string; internal: string; misc: string; state: string; policyRoot: string } {
  return {
    socket: join(dir, 'qubesd.sock'),
    internal: join(dir, 'qubesd.internal.sock'),
    misc: join(dir, 'qubesd.misc.sock'),
    state: join(dir, 'state', 'qubes.json'),
    policyRoot: join(dir, 'dom0'),
  };
}

/**
 * Loads (or seeds) the state and starts both sockets. Throws StateFileError
 * when the state file exists but cannot be used; the file is left untouched.
 */
export async function startQubesd(opts: QubesdOptions): Promise<Qubesd> {
  const paths = qubesdPaths(opts.dir);
  const existing = readStateFile(paths.state);
  const state = existing ?? (opts.seed ? opts.seed() : SimApp.emptyState());
  if (existing) {
    // a restarted host boots with every qube but dom0 powered off
    for (const vm of state.vms) if (vm.klass !== 'AdminVM') vm.power = 'Halted';
  }
  const app = new SimApp(state, paths.state, opts.hooks ?? {}, opts.durable ?? true, opts.stateAtClose === true);
  app.save();
  const servers: ApiServer[] = [];
  try {
    servers.push(await listenApi(paths.socket, { app, methods: adminMethods, policyRoot: paths.policyRoot }));
    servers.push(await listenApi(paths.internal, { app, methods: internalMethods, policyRoot: null }));
    servers.push(await listenApi(paths.misc, { app, methods: miscMethods, policyRoot: null }));
  } catch (e) {
    await Promise.all(servers.map((s) => s.close()));
    throw e;
  }
  return {
    app,
    socketPath: paths.socket,
    internalSocketPath: paths.internal,
    miscSocketPath: paths.misc,
    statePath: paths.state,
    close: async () => {
      await Promise.all(servers.map((s) => s.close()));
      app.flush();
    },
  };
}
