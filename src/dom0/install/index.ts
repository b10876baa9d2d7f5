/**
 * `installDom0`: puts the qmcp dom0 side into ROOT (`/` on a real dom0, the
 * simulated dom0's directory otherwise). Renders every file and validates
 * the policy, plans against what ROOT holds (install-plan.ts), then applies the
 * plan (install-apply.ts), writing atomically; running it again changes nothing.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { settingsPath } from '../../shared/model/index.js';
import type { Principals } from '../../shared/model/index.js';
import { serviceNames } from './names.js';
import type { FileStatus, PlannedFile } from './files.js';
import { POLICY_FILE, SettingsError, defaultSettingsJson, renderPair } from './policy.js';
import { renderReaperUnits, renderResidentUnits, renderWrapper } from './wrapper.js';
import type { WrapperOptions } from './wrapper.js';
import { MANIFEST_PATH, readManifest } from './manifest.js';
import type { Manifest, ServiceMode } from './manifest.js';
import { checkPreconditions } from './preconditions.js';
import { RESIDENT_SERVICE, RESIDENT_SOCKET, TIMER_WANTS_LINK } from './systemd.js';
import { applyInstall } from './install-apply.js';
import { planInstall } from './install-plan.js';
import { readInstallState } from './root-state.js';
import { QmcpError } from '../../shared/errors.js';

export interface InstallOptions {
  readonly root: string;
  /** Settings to install (replacing any present); without it the present or default settings are kept. */
  readonly settingsFile?: string;
  /** Settings to install as an object (replacing any present), when no settingsFile is given. */
  readonly settings?: Record<string, unknown>;
  /** Settings as an object, used only when ROOT has none yet (a new simulated host). */
  readonly initialSettings?: Record<string, unknown>;
  readonly dryRun?: boolean;
  /** The qubesd socket the services use; default /var/run/qubesd.sock. */
  readonly qubesdSocket?: string;
  /** The node binary the wrappers exec; default the one running this. */
  readonly nodePath?: string;
  /** Check Node, the principal qube and hybrids first (the operator's command does). */
  readonly preconditions?: boolean;
  /** The Node version to check, for tests; default the running one. */
  readonly nodeVersion?: string;
  /**
   * The user the dom0 services run as (qrexec runs them as the dom0 user,
   * not root): the audit log and qmcp's state directories are given to it,
   * so the services can append and take their slots and locks.
   */
  readonly serviceOwner?: { readonly uid: number; readonly gid: number };
  /** How qrexec reaches the dom0 services; default what the last install chose, else per-call. */
  readonly serviceMode?: ServiceMode;
  /** Whether each file written waits for the disk (default true); a simulated dom0 thrown away after a check need not. */
  readonly durable?: boolean;
}

export interface InstalledFile {
  readonly path: string;
  readonly status: FileStatus;
  /** What changes, for text files under etc/ that change; '' otherwise. */
  readonly diff: string;
}

export interface InstallReport {
  readonly root: string;
  readonly dryRun: boolean;
  readonly files: readonly InstalledFile[];
  /** Backups of replaced files, under ROOT. */
  readonly backups: readonly string[];
  /** Files an earlier install wrote that this one no longer has. */
  readonly removed: readonly string[];
  /** Settings problems, for the operator. */
  readonly warnings: readonly string[];
  /** Checks skipped and other facts the operator should know. */
  readonly notes: readonly string[];
  /** On a real dom0: why the reaper timer could not be enabled and started; null when it was (or ROOT is not `/`). */
  readonly timerProblem: string | null;
}

export class InstallError extends QmcpError {
  readonly code = 'ERR_QMCP_INSTALL';
}

export { MANIFEST_PATH };
export const BUNDLE_DIR = 'usr/lib/qmcp';
export const REAPER_SERVICE = 'etc/systemd/system/qmcp-reaper.service';
export const REAPER_TIMER = 'etc/systemd/system/qmcp-reaper.timer';
export const RESIDENT_SOCKET_UNIT = `etc/systemd/system/${RESIDENT_SOCKET}`;
export const RESIDENT_SERVICE_UNIT = `etc/systemd/system/${RESIDENT_SERVICE}`;
export { TIMER_WANTS_LINK };
const SETTINGS_PATH = 'etc/qmcp/settings.json';
export const DEFAULT_SOCKET = '/var/run/qubesd.sock';

/** The compiled `src` directory this module was loaded from. */
function compiledSrc(): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
}

function jsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...jsFiles(path));
    else if (entry.isFile() && entry.name.endsWith('.js')) out.push(path);
  }
  return out.sort();
}

function bundleFiles(): PlannedFile[] {
  const src = compiledSrc();
  const files: PlannedFile[] = [
    { path: `${BUNDLE_DIR}/package.json`, content: Buffer.from('{ "type": "module" }\n'), mode: 0o644 },
  ];
  for (const part of ['dom0', 'shared']) {
    for (const file of jsFiles(join(src, part))) {
      const rel = relative(src, file).split(sep).join('/');
      files.push({ path: `${BUNDLE_DIR}/${rel}`, content: readFileSync(file), mode: 0o644 });
    }
  }
  return files;
}

/**
 * The principals in effect after install and the settings file to write:
 * the given file or object, else the present one, else the defaults, in
 * either form (docs/principals.md); always stamped with the current model
 * hash, so a new version's install re-stamps them.
 */
function chooseSettings(root: string, opts: InstallOptions, warnings: string[]): { principals: Principals; policy: string; file: PlannedFile } {
  let source: string;
  let raw: unknown;
  try {
    if (opts.settingsFile) {
      source = opts.settingsFile;
      raw = JSON.parse(readFileSync(opts.settingsFile, 'utf8'));
    } else if (opts.settings) {
      source = 'the settings given';
      raw = opts.settings;
    } else {
      source = settingsPath(root);
      try {
        raw = JSON.parse(readFileSync(source, 'utf8'));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        source = opts.initialSettings ? 'the initial settings' : 'the defaults';
        raw = opts.initialSettings ?? defaultSettingsJson();
      }
    }
  } catch (err) {
    throw new InstallError(`settings unreadable (${(err as Error).message}); nothing written`);
  }
  try {
    const pair = renderPair(raw);
    warnings.push(...pair.warnings);
    return { principals: pair.principals, policy: pair.policy, file: { path: SETTINGS_PATH, content: Buffer.from(pair.text), mode: 0o644 } };
  } catch (err) {
    if (err instanceof SettingsError) throw new InstallError(`settings from ${source} are unusable: ${err.message}; nothing written`);
    throw new InstallError(`rendered policy does not parse; nothing written: ${(err as Error).message}`);
  }
}

/** The files this version renders for ROOT, and the principals they come from; nothing is written. */
export function renderInstall(root: string, opts: InstallOptions, warnings: string[]): { principals: Principals; planned: PlannedFile[]; occupied: string[]; options: Manifest['options'] } {
  const { principals, policy, file: settingsFile } = chooseSettings(root, opts, warnings);
  const previous = readManifest(root);
  const serviceMode = opts.serviceMode ?? previous?.options.serviceMode ?? 'per-call';
  const owner = opts.serviceOwner ?? previous?.options.serviceOwner;
  const options: Manifest['options'] = {
    qubesdSocket: opts.qubesdSocket ?? DEFAULT_SOCKET,
    node: opts.nodePath ?? process.execPath,
    serviceMode,
    ...(owner && serviceMode === 'resident' ? { serviceOwner: owner } : {}),
  };
  const at = (main: string): WrapperOptions => ({ root, qubesdSocket: options.qubesdSocket, node: options.node, entry: join(root, BUNDLE_DIR, 'dom0', main) });
  const reaper = renderReaperUnits(at('reaper-main.js'));
  const planned: PlannedFile[] = [
    { path: `etc/qubes/policy.d/${POLICY_FILE}`, content: Buffer.from(policy), mode: 0o644 },
    ...serviceFiles(serviceMode, at, options.serviceOwner),
    ...bundleFiles(),
    settingsFile,
    { path: REAPER_SERVICE, content: Buffer.from(reaper.service), mode: 0o644 },
    { path: REAPER_TIMER, content: Buffer.from(reaper.timer), mode: 0o644 },
  ];
  // in resident mode the services are sockets where the executables would be: those paths must be free
  const occupied = serviceMode === 'resident' ? serviceNames().map((s) => `etc/qubes-rpc/${s}`) : [];
  return { principals, planned, occupied, options };
}

/** The executables qrexec runs per call, or the resident service's units (its sockets are systemd's). */
function serviceFiles(mode: ServiceMode, at: (main: string) => WrapperOptions, owner?: InstallOptions['serviceOwner']): PlannedFile[] {
  if (mode === 'resident') {
    const units = renderResidentUnits(at('resident-main.js'), serviceNames(), owner);
    return [
      { path: RESIDENT_SOCKET_UNIT, content: Buffer.from(units.socket), mode: 0o644 },
      { path: RESIDENT_SERVICE_UNIT, content: Buffer.from(units.service), mode: 0o644 },
    ];
  }
  const wrapper = Buffer.from(renderWrapper(at('service-main.js')));
  return serviceNames().map((s) => ({ path: `etc/qubes-rpc/${s}`, content: wrapper, mode: 0o755 }));
}

export async function installDom0(opts: InstallOptions): Promise<InstallReport> {
  const root = resolve(opts.root);
  const dryRun = opts.dryRun ?? false;
  const warnings: string[] = [];
  const notes: string[] = [];
  const rendered = renderInstall(root, opts, warnings);

  if (opts.preconditions) {
    const pre = await checkPreconditions({ root, principals: rendered.principals.list, qubesdSocket: rendered.options.qubesdSocket, ...(opts.nodeVersion ? { nodeVersion: opts.nodeVersion } : {}) });
    if (pre.refusals.length > 0) throw new InstallError(`${pre.refusals.join('; ')}; nothing written`);
    notes.push(...pre.notes);
  }

  const plan = planInstall(rendered, readInstallState(root, rendered.planned.map((f) => f.path), rendered.occupied));
  const files: InstalledFile[] = [...plan.files, plan.manifest].map((f) => ({ path: f.path, status: f.status, diff: f.diff }));
  files.push({ path: plan.link.path, status: plan.link.status, diff: '' });
  const removed = plan.stale.map((s) => s.path);
  if (dryRun) return { root, dryRun, files, backups: [], removed, warnings, notes, timerProblem: null };
  const { backups, timerProblem } = await applyInstall(root, plan, { serviceMode: rendered.options.serviceMode, ...(opts.serviceOwner ? { serviceOwner: opts.serviceOwner } : {}), ...(opts.durable === false ? { durable: false } : {}) });
  return { root, dryRun, files, backups, removed, warnings, notes, timerProblem };
}
