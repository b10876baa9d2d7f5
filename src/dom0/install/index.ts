/**
 * `installDom0`: puts the qmcp dom0 side into ROOT (`/` on a real dom0, the
 * simulated dom0's directory otherwise). Plans every file, validates the
 * policy, then writes atomically; running it again changes nothing.
 */
import { chownSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, rmSync, symlinkSync, unlinkSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initAuditLog } from '../audit/index.js';
import { settingsPath } from '../../shared/model/index.js';
import type { Settings } from '../../shared/model/index.js';
import { serviceNames } from './names.js';
import { applyFile, sha256, statusOf, writeAtomic } from './files.js';
import type { FileStatus, PlannedFile } from './files.js';
import { POLICY_FILE, SettingsError, checkPolicy, defaultSettingsJson, renderPolicy, stampSettings } from './policy.js';
import { renderReaperUnits, renderWrapper } from './wrapper.js';
import { unifiedDiff } from './diff.js';
import { MANIFEST_PATH, manifestText, readManifest } from './manifest.js';
import type { Manifest } from './manifest.js';
import { checkPreconditions } from './preconditions.js';
import { TIMER_LINK_TARGET, TIMER_WANTS_LINK, enableTimerNow } from './systemd.js';

export interface InstallOptions {
  readonly root: string;
  /** Settings to install (replacing any present); without it the present or default settings are kept. */
  readonly settingsFile?: string;
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

export class InstallError extends Error {}

export { MANIFEST_PATH };
export const BUNDLE_DIR = 'usr/lib/qmcp';
export const REAPER_SERVICE = 'etc/systemd/system/qmcp-reaper.service';
export const REAPER_TIMER = 'etc/systemd/system/qmcp-reaper.timer';
export { TIMER_WANTS_LINK };
const SETTINGS_PATH = 'etc/qmcp/settings.json';
export const DEFAULT_SOCKET = '/var/run/qubesd.sock';
/** Directories install makes beside its files (audit log, witness, slots, backups). */
const STATE_DIRS = ['var/log/qmcp', 'var/lib/qmcp', 'var/lib/qmcp/slots'];
const AUDIT_LOG = 'var/log/qmcp/audit.log';

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
 * The settings in effect after install and the settings file to write: the
 * given file, else the present one, else the defaults; always stamped with
 * the current model hash, so a new version's install re-stamps them.
 */
function chooseSettings(root: string, opts: InstallOptions, warnings: string[]): { settings: Settings; file: PlannedFile } {
  let source: string;
  let raw: unknown;
  try {
    if (opts.settingsFile) {
      source = opts.settingsFile;
      raw = JSON.parse(readFileSync(opts.settingsFile, 'utf8'));
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
    const stamped = stampSettings(raw);
    warnings.push(...stamped.warnings);
    return { settings: stamped.settings, file: { path: SETTINGS_PATH, content: Buffer.from(stamped.text), mode: 0o644 } };
  } catch (err) {
    if (err instanceof SettingsError) throw new InstallError(`settings from ${source} are unusable: ${err.message}; nothing written`);
    throw err;
  }
}

/** Every ancestor directory of a ROOT-relative path, shallowest first. */
function ancestors(path: string): string[] {
  const parts = path.split('/');
  return parts.slice(0, -1).map((_, i) => parts.slice(0, i + 1).join('/'));
}

function linkStatus(root: string, path: string, target: string): FileStatus {
  try {
    const st = lstatSync(join(root, path));
    return st.isSymbolicLink() && readlinkSync(join(root, path)) === target ? 'unchanged' : 'changed';
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'new';
    throw err;
  }
}

function readOrNull(path: string): Buffer | null {
  try {
    return readFileSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'EISDIR') return null;
    throw err;
  }
}

/** The files this version renders for ROOT, and the settings they come from; nothing is written. */
export function planInstall(root: string, opts: InstallOptions, warnings: string[]): { settings: Settings; planned: PlannedFile[]; options: Manifest['options'] } {
  const { settings, file: settingsFile } = chooseSettings(root, opts, warnings);
  const policy = renderPolicy(settings);
  try {
    checkPolicy(policy);
  } catch (err) {
    throw new InstallError(`rendered policy does not parse; nothing written: ${(err as Error).message}`);
  }
  const options = { qubesdSocket: opts.qubesdSocket ?? DEFAULT_SOCKET, node: opts.nodePath ?? process.execPath };
  const entry = join(root, BUNDLE_DIR, 'dom0', 'service-main.js');
  const wrapper = Buffer.from(renderWrapper({ root, qubesdSocket: options.qubesdSocket, node: options.node, entry }));
  const reaper = renderReaperUnits({ root, qubesdSocket: options.qubesdSocket, node: options.node, entry: join(root, BUNDLE_DIR, 'dom0', 'reaper-main.js') });
  const planned: PlannedFile[] = [
    { path: `etc/qubes/policy.d/${POLICY_FILE}`, content: Buffer.from(policy), mode: 0o644 },
    ...serviceNames().map((s) => ({ path: `etc/qubes-rpc/${s}`, content: wrapper, mode: 0o755 })),
    ...bundleFiles(),
    settingsFile,
    { path: REAPER_SERVICE, content: Buffer.from(reaper.service), mode: 0o644 },
    { path: REAPER_TIMER, content: Buffer.from(reaper.timer), mode: 0o644 },
  ];
  return { settings, planned, options };
}

export async function installDom0(opts: InstallOptions): Promise<InstallReport> {
  const root = resolve(opts.root);
  const dryRun = opts.dryRun ?? false;
  const warnings: string[] = [];
  const notes: string[] = [];
  const { settings, planned, options } = planInstall(root, opts, warnings);

  if (opts.preconditions) {
    const pre = await checkPreconditions({ root, settings, qubesdSocket: options.qubesdSocket, ...(opts.nodeVersion ? { nodeVersion: opts.nodeVersion } : {}) });
    if (pre.refusals.length > 0) throw new InstallError(`${pre.refusals.join('; ')}; nothing written`);
    notes.push(...pre.notes);
  }

  const previous = readManifest(root);
  const ours = new Set((previous?.files ?? []).map((f) => f.path));
  for (const l of previous?.symlinks ?? []) ours.add(l.path);

  // Operator files qmcp writes over for the first time: kept whole, restored by uninstall.
  const originals = [...(previous?.originals ?? [])];
  const newOriginals: { path: string; backup: string; content: Buffer; mode: number }[] = [];
  for (const path of [...planned.map((f) => f.path), TIMER_WANTS_LINK]) {
    if (ours.has(path) || originals.some((o) => o.path === path)) continue;
    let st;
    try {
      st = lstatSync(join(root, path));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw err;
    }
    if (!st.isFile()) continue;
    const content = readFileSync(join(root, path));
    const backup = join('var', 'lib', 'qmcp', 'backup', `${path}.${sha256(content).slice(0, 16)}.original`).split(sep).join('/');
    newOriginals.push({ path, backup, content, mode: st.mode & 0o7777 });
    originals.push({ path, backup, mode: (st.mode & 0o7777).toString(8) });
  }

  const wanted = new Set<string>([...STATE_DIRS.flatMap((d) => ancestors(`${d}/-`)), ...ancestors(TIMER_WANTS_LINK)]);
  for (const f of planned) for (const d of ancestors(f.path)) wanted.add(d);
  for (const o of newOriginals) for (const d of ancestors(o.backup)) wanted.add(d);
  const created = new Set(previous?.dirs ?? []);
  for (const d of wanted) if (!existsSync(join(root, d))) created.add(d);
  const auditLogCreated = (previous?.auditLogCreated ?? false) || !existsSync(join(root, AUDIT_LOG));

  const owned = new Set(planned.map((f) => f.path));
  const listed = planned.map((f) => ({ path: f.path, sha256: sha256(f.content), mode: f.mode.toString(8) }));
  listed.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const manifest: Manifest = {
    format: 2,
    options,
    files: listed,
    symlinks: [{ path: TIMER_WANTS_LINK, target: TIMER_LINK_TARGET }],
    originals: originals.sort((a, b) => (a.path < b.path ? -1 : 1)),
    dirs: [...created].sort(),
    auditLogCreated,
  };
  planned.push({ path: MANIFEST_PATH, content: Buffer.from(manifestText(manifest)), mode: 0o644 });
  const stale = [...(previous?.files ?? []).map((f) => f.path).filter((p) => !owned.has(p)), ...(previous?.symlinks ?? []).map((l) => l.path).filter((p) => p !== TIMER_WANTS_LINK)];

  const files: InstalledFile[] = planned.map((f) => {
    const status = statusOf(root, f);
    const diff = status !== 'unchanged' && f.path.startsWith('etc/') ? unifiedDiff(f.path, readOrNull(join(root, f.path)), f.content) : '';
    return { path: f.path, status, diff };
  });
  files.push({ path: TIMER_WANTS_LINK, status: linkStatus(root, TIMER_WANTS_LINK, TIMER_LINK_TARGET), diff: '' });
  if (dryRun) return { root, dryRun, files, backups: [], removed: stale, warnings, notes, timerProblem: null };

  await initAuditLog(root);
  // the services' per-principal concurrency slots (run as the dom0 user)
  mkdirSync(join(root, 'var', 'lib', 'qmcp', 'slots'), { recursive: true, mode: 0o750 });
  if (opts.serviceOwner) {
    for (const p of [...STATE_DIRS, AUDIT_LOG]) chownSync(join(root, p), opts.serviceOwner.uid, opts.serviceOwner.gid);
  }
  const backups: string[] = [];
  for (const o of newOriginals) {
    writeAtomic(join(root, o.backup), o.content, 0o600);
    backups.push(o.backup);
  }
  const manifestFile = planned.pop() as PlannedFile;
  for (const f of planned) {
    if (statusOf(root, f) === 'unchanged') continue;
    // an original is already kept whole, and our own unedited earlier version needs no backup;
    // anything else replaced (an edit) gets one
    const current = readOrNull(join(root, f.path));
    const ownUnedited = current !== null && previous?.files.some((p) => p.path === f.path && p.sha256 === sha256(current));
    if (newOriginals.some((o) => o.path === f.path) || ownUnedited) writeAtomic(join(root, f.path), f.content, f.mode);
    else {
      const backup = applyFile(root, f);
      if (backup) backups.push(backup);
    }
  }
  if (linkStatus(root, TIMER_WANTS_LINK, TIMER_LINK_TARGET) !== 'unchanged') {
    const link = join(root, TIMER_WANTS_LINK);
    mkdirSync(dirname(link), { recursive: true, mode: 0o755 });
    rmSync(link, { force: true });
    symlinkSync(TIMER_LINK_TARGET, link);
  }
  for (const p of stale) {
    try {
      const st = lstatSync(join(root, p));
      const old = previous?.files.find((f) => f.path === p);
      if (st.isFile() && old) {
        const prev = readFileSync(join(root, p));
        if (old.sha256 !== sha256(prev)) {
          const kept = join('var', 'lib', 'qmcp', 'backup', `${p}.${sha256(prev).slice(0, 16)}`);
          writeAtomic(join(root, kept), prev, 0o600);
          backups.push(kept);
        }
      }
      unlinkSync(join(root, p));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  // the manifest goes last, so it never lists a file that is not yet there
  if (statusOf(root, manifestFile) !== 'unchanged') writeAtomic(join(root, manifestFile.path), manifestFile.content, manifestFile.mode);

  let timerProblem: string | null = null;
  if (root === '/') timerProblem = await enableTimerNow();
  return { root, dryRun, files, backups, removed: stale, warnings, notes, timerProblem };
}
