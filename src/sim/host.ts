/**
 * The simulated Qubes host: qubesd, the qrexec router beside it, and a
 * bubblewrap sandbox behind every running qube. With `install`, the real
 * dom0 installer puts qmcp's policy and services into the simulated dom0.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { installDom0 } from '../dom0/install/index.js';
import type { InstallReport } from '../dom0/install/index.js';
import type { Fleet } from './fleet.js';
import { fleetState } from './fleet.js';
import type { Qubesd } from './qubesd/index.js';
import { startQubesd } from './qubesd/index.js';
import { adminMethods } from './qubesd/methods/index.js';
import { seedDefaultPolicy, startRouter } from './qrexec/index.js';
import { installQubesRpcServices } from './qrexec/dom0-rpc.js';
import { superviseResident } from './resident.js';
import type { ResidentSupervisor } from './resident.js';
import { serviceModeOf } from '../dom0/install/manifest.js';
import type { ServiceMode } from '../dom0/install/manifest.js';
import { installDom0Client } from './qrexec/dom0-seat.js';
import type { Router } from './qrexec/index.js';
import { QubeSandboxes, registryLookup } from './sandbox/index.js';

export interface SimHostOptions {
  /** The host directory; created if missing. */
  readonly dir: string;
  /** Seeds a new directory only; an existing state is kept as it is. */
  readonly fleet?: Fleet;
  /** Install qmcp's dom0 side with the real installer (SPEC §10). */
  readonly install?: boolean;
  /** Settings for that install, of one principal or several; default: the installed or default settings. */
  readonly settingsFile?: string;
  /** Settings for a host that has none installed yet (the demo's). */
  readonly initialSettings?: Record<string, unknown>;
  /** Let sandboxes share the host's network (demo only). */
  readonly network?: boolean;
  /** How long an `ask` waits for the operator. */
  readonly askTimeoutMs?: number;
  /** How often the router looks for qubes come and gone (default 500 ms); a qube about to run gets its socket at once regardless. */
  readonly qrexecPollMs?: number;
  /** How the installed dom0 services are reached; default what the last install chose, else per-call. */
  readonly serviceMode?: ServiceMode;
  /** Whether qubesd's state and the installed files wait for the disk (default true); a machine thrown away after a check need not. */
  readonly durable?: boolean;
  /** Whether qubesd writes its state only when the host closes (a machine no one restarts while it runs). */
  readonly stateAtClose?: boolean;
  /** Progress lines for the operator. */
  readonly log?: (line: string) => void;
}

export interface SimHost {
  readonly dir: string;
  readonly qubesd: Qubesd;
  readonly router: Router;
  readonly sandboxes: QubeSandboxes;
  /** What the installer did, when asked to install. */
  readonly install: InstallReport | null;
  /** The resident dom0 service, started as systemd would when the install has its unit; null otherwise. */
  readonly resident: ResidentSupervisor | null;
  close(): Promise<void>;
}

/** The simulated dom0's file tree inside a host directory. */
export function dom0Root(dir: string): string {
  return join(dir, 'dom0');
}

/** The way of serving dom0 services QMCP_DOM0_SERVICE_MODE names (the boundary suite and `verify --service-mode`); undefined when unset. */
export function envServiceMode(env: NodeJS.ProcessEnv = process.env): ServiceMode | undefined {
  const value = env['QMCP_DOM0_SERVICE_MODE'];
  return value ? serviceModeOf(value) : undefined;
}

export async function startSimHost(opts: SimHostOptions): Promise<SimHost> {
  const log = opts.log ?? (() => undefined);
  const dir = opts.dir;
  mkdirSync(dir, { recursive: true });
  const root = dom0Root(dir);
  const fresh = !existsSync(join(root, 'etc', 'qubes', 'policy.d'));

  const registry: { app?: Qubesd['app']; router?: Router } = {};
  const sandboxes = new QubeSandboxes({
    dir,
    lookup: registryLookup(() => registry.app),
    qrexecReady: async (name) => registry.router?.ensureSocket(name),
    ...(opts.network ? { network: true } : {}),
    log,
  });
  const fleet = opts.fleet;
  const qubesd = await startQubesd({
    dir,
    ...(fleet ? { seed: () => fleetState(fleet) } : {}),
    hooks: sandboxes,
    ...(opts.durable === false ? { durable: false } : {}),
    ...(opts.stateAtClose ? { stateAtClose: true } : {}),
  });
  registry.app = qubesd.app;
  log(`qubesd listening on ${qubesd.socketPath} (${qubesd.app.vms.size} qubes)`);

  if (fresh) seedDefaultPolicy(root);
  installQubesRpcServices(root, qubesd.miscSocketPath);
  let install: InstallReport | null = null;
  const serviceMode = opts.serviceMode ?? envServiceMode();
  if (opts.install) {
    try {
      install = await installDom0({
        root,
        qubesdSocket: qubesd.socketPath,
        ...(opts.settingsFile ? { settingsFile: opts.settingsFile } : {}),
        ...(opts.initialSettings ? { initialSettings: opts.initialSettings } : {}),
        ...(serviceMode ? { serviceMode } : {}),
        ...(opts.durable === false ? { durable: false } : {}),
      });
    } catch (err) {
      await qubesd.close();
      throw err;
    }
    const changed = install.files.filter((f) => f.status !== 'unchanged').length;
    log(`qmcp dom0 side installed into ${root} (${changed} of ${install.files.length} files written)`);
    for (const w of install.warnings) log(`settings: ${w}`);
  }

  let resident: ResidentSupervisor | null;
  try {
    resident = await superviseResident(root, log);
  } catch (err) {
    await qubesd.close();
    throw err;
  }

  const router = await startRouter({
    dir,
    qubesdSocket: qubesd.socketPath,
    internalSocket: qubesd.internalSocketPath,
    policyRoot: root,
    adminMethods: new Set(Object.keys(adminMethods)),
    qubeServices: {
      run: (qube, service, argument, source, user, stdio) =>
        sandboxes.run({ qube, service, argument, source, user, ...stdio }),
    },
    ...(opts.askTimeoutMs !== undefined ? { askTimeoutMs: opts.askTimeoutMs } : {}),
    ...(opts.qrexecPollMs !== undefined ? { pollMs: opts.qrexecPollMs } : {}),
    log,
  });
  registry.router = router;
  log(`qrexec router: one socket per qube under ${router.socketDir}`);
  installDom0Client(root, router.dom0Socket);

  return {
    dir,
    qubesd,
    router,
    sandboxes,
    install,
    resident,
    close: async () => {
      await router.close();
      await resident?.close();
      await sandboxes.stopAll();
      await qubesd.close();
      log('stopped');
    },
  };
}
