/** The simulated Qubes host: qubesd now, the qrexec router beside it. */
import { mkdirSync } from 'node:fs';
import type { Fleet } from './fleet.js';
import { fleetState } from './fleet.js';
import type { PowerHooks, Qubesd } from './qubesd/index.js';
import { startQubesd } from './qubesd/index.js';

export interface SimHostOptions {
  /** The host directory; created if missing. */
  readonly dir: string;
  /** Seeds a new directory only; an existing state is kept as it is. */
  readonly fleet?: Fleet;
  readonly hooks?: PowerHooks;
  /** Progress lines for the operator. */
  readonly log?: (line: string) => void;
}

export interface SimHost {
  readonly qubesd: Qubesd;
  close(): Promise<void>;
}

export async function startSimHost(opts: SimHostOptions): Promise<SimHost> {
  const log = opts.log ?? (() => undefined);
  mkdirSync(opts.dir, { recursive: true });
  const fleet = opts.fleet;
  const qubesd = await startQubesd({
    dir: opts.dir,
    ...(fleet ? { seed: () => fleetState(fleet) } : {}),
    ...(opts.hooks ? { hooks: opts.hooks } : {}),
  });
  log(`qubesd listening on ${qubesd.socketPath} (${qubesd.app.vms.size} qubes, state ${qubesd.statePath})`);

  // QREXEC ROUTER: start the qrexec router (src/sim/qrexec/) here, after
  // qubesd, giving it opts.dir and qubesd.internalSocketPath; close it first
  // in close() below.

  return {
    qubesd,
    close: async () => {
      await qubesd.close();
      log('qubesd stopped');
    },
  };
}
