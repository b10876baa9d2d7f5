/**
 * `installDom0`: puts the qmcp dom0 side into ROOT (`/` on a real dom0, the
 * simulated dom0's directory otherwise). Plans every file, validates the
 * policy, then writes atomically; running it again changes nothing.
 */
import { mkdirSync, readFileSync, readdirSync, unlinkSync } from 'node:fs';
import { dirname, join, posix, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { initAuditLog } from '../audit/index.js';
import { settingsPath } from '../../shared/model/index.js';
import type { Settings } from '../../shared/model/index.js';
import { serviceNames } from './names.js';
import { applyFile, sha256, statusOf, writeAtomic } from './files.js';
import type { FileStatus, PlannedFile } from './files.js';
import { POLICY_FILE, SettingsError, checkPolicy, defaultSettingsJson, renderPolicy, stampSettings } from './policy.js';
import { renderReaperUnits, renderWrapper } from './wrapper.js';

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
}

export interface InstallReport {
  readonly root: string;
  readonly dryRun: boolean;
  readonly files: readonly { path: string; status: FileStatus }[];
  /** Backups of replaced files, under ROOT. */
  readonly backups: readonly string[];
  /** Files an earlier install wrote that this one no longer has. */
  readonly removed: readonly string[];
  /** Settings problems, for the operator. */
  readonly warnings: readonly string[];
}

export class InstallError extends Error {}

export const MANIFEST_PATH = 'var/lib/qmcp/manifest.json';
export const BUNDLE_DIR = 'usr/lib/qmcp';
export const REAPER_SERVICE = 'etc/systemd/system/qmcp-reaper.service';
export const REAPER_TIMER = 'etc/systemd/system/qmcp-reaper.timer';
const SETTINGS_PATH = 'etc/qmcp/settings.json';
const DEFAULT_SOCKET = '/var/run/qubesd.sock';

interface Manifest {
  readonly format: 1;
  readonly files: { path: string; sha256: string; mode: string }[];
}

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

function readManifest(root: string): Manifest | null {
  try {
    const m = JSON.parse(readFileSync(join(root, MANIFEST_PATH), 'utf8')) as Manifest;
    return Array.isArray(m.files) ? m : null;
  } catch {
    return null;
  }
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

export async function installDom0(opts: InstallOptions): Promise<InstallReport> {
  const root = resolve(opts.root);
  const dryRun = opts.dryRun ?? false;
  const warnings: string[] = [];
  const { settings, file: settingsFile } = chooseSettings(root, opts, warnings);

  const policy = renderPolicy(settings);
  try {
    checkPolicy(policy);
  } catch (err) {
    throw new InstallError(`rendered policy does not parse; nothing written: ${(err as Error).message}`);
  }

  const entry = join(root, BUNDLE_DIR, 'dom0', 'service-main.js');
  const wrapper = Buffer.from(
    renderWrapper({ root, qubesdSocket: opts.qubesdSocket ?? DEFAULT_SOCKET, node: opts.nodePath ?? process.execPath, entry }),
  );
  const reaper = renderReaperUnits({
    root,
    qubesdSocket: opts.qubesdSocket ?? DEFAULT_SOCKET,
    node: opts.nodePath ?? process.execPath,
    entry: join(root, BUNDLE_DIR, 'dom0', 'reaper-main.js'),
  });
  const planned: PlannedFile[] = [
    { path: `etc/qubes/policy.d/${POLICY_FILE}`, content: Buffer.from(policy), mode: 0o644 },
    ...serviceNames().map((s) => ({ path: `etc/qubes-rpc/${s}`, content: wrapper, mode: 0o755 })),
    ...bundleFiles(),
    settingsFile,
    { path: REAPER_SERVICE, content: Buffer.from(reaper.service), mode: 0o644 },
    { path: REAPER_TIMER, content: Buffer.from(reaper.timer), mode: 0o644 },
  ];

  // a settings file an earlier install created stays ours, so uninstall can remove it
  const previous = readManifest(root);
  const owned = new Set(planned.map((f) => f.path));
  const listed = [...planned.map((f) => ({ path: f.path, sha256: sha256(f.content), mode: f.mode.toString(8) }))];
  listed.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const manifest: Manifest = { format: 1, files: listed };
  planned.push({ path: MANIFEST_PATH, content: Buffer.from(JSON.stringify(manifest, null, 2) + '\n'), mode: 0o644 });
  const stale = (previous?.files ?? []).map((f) => f.path).filter((p) => !owned.has(p) && safeRelative(p));

  const files = planned.map((f) => ({ path: f.path, status: statusOf(root, f) }));
  if (dryRun) return { root, dryRun, files, backups: [], removed: stale, warnings };

  await initAuditLog(root);
  // the services' per-principal concurrency slots (run as the dom0 user)
  mkdirSync(join(root, 'var', 'lib', 'qmcp', 'slots'), { recursive: true, mode: 0o750 });
  const backups: string[] = [];
  for (const f of planned) {
    if (statusOf(root, f) === 'unchanged') continue;
    // the manifest goes last, so it never lists a file that is not yet there
    const backup = applyFile(root, f);
    if (backup) backups.push(backup);
  }
  for (const p of stale) {
    try {
      const prev = readFileSync(join(root, p));
      const old = previous?.files.find((f) => f.path === p);
      if (old && old.sha256 !== sha256(prev)) {
        const kept = join('var', 'lib', 'qmcp', 'backup', `${p}.${sha256(prev).slice(0, 16)}`);
        writeAtomic(join(root, kept), prev, 0o600);
        backups.push(kept);
      }
      unlinkSync(join(root, p));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  return { root, dryRun, files, backups, removed: stale, warnings };
}

/** A manifest path that stays inside ROOT. */
function safeRelative(p: string): boolean {
  return typeof p === 'string' && p !== '' && !posix.isAbsolute(p) && !posix.normalize(p).startsWith('..');
}
