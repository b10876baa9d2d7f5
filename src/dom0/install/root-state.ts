/**
 * What install and uninstall find under ROOT before they plan: the paths
 * they may write or remove, read once, so that planning is a function of
 * this state alone.
 */
import { existsSync, lstatSync, readFileSync, readdirSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { auditLogPath } from '../audit/index.js';
import type { Manifest } from './manifest.js';
import { MANIFEST_PATH, readManifest } from './manifest.js';
import { AUDIT_LOG, dirsInstallMayCreate } from './install-plan.js';
import type { InstallState, PathState } from './install-plan.js';
import { TIMER_WANTS_LINK } from './systemd.js';
import type { UninstallState } from './uninstall-plan.js';

/**
 * One path as it is now; null when nothing is there. `through`: read what
 * the path leads to even when it is not a regular file (a link followed, a
 * directory refused with EISDIR), as writing over it would meet it.
 */
function inspect(root: string, path: string, through: boolean): PathState | null {
  const full = join(root, path);
  let st;
  try {
    st = lstatSync(full);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  if (st.isFile()) return { regular: true, link: null, content: readFileSync(full), mode: st.mode & 0o7777 };
  const link = st.isSymbolicLink() ? readlinkSync(full) : null;
  if (!through) return { regular: false, link, content: null, mode: null };
  try {
    const content = readFileSync(full);
    return { regular: false, link, content, mode: statSync(full).mode & 0o7777 };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { regular: false, link, content: null, mode: null };
    throw err;
  }
}

function inspectAll(root: string, paths: Iterable<string>, through: boolean, into: Map<string, PathState>): void {
  for (const p of paths) {
    if (into.has(p)) continue;
    const s = inspect(root, p, through);
    if (s) into.set(p, s);
  }
}

/** The state an install of `desired` (paths under ROOT) is planned from. */
export function readInstallState(root: string, desired: readonly string[], occupied: readonly string[] = []): InstallState {
  const manifest = readManifest(root);
  const paths = new Map<string, PathState>();
  inspectAll(root, [...desired, MANIFEST_PATH], true, paths);
  inspectAll(root, occupied, false, paths);
  inspectAll(root, [TIMER_WANTS_LINK, ...(manifest?.files ?? []).map((f) => f.path), ...(manifest?.symlinks ?? []).map((l) => l.path)], false, paths);
  const dirs = new Set(dirsInstallMayCreate(desired).filter((d) => existsSync(join(root, d))));
  return { manifest, paths, dirs, auditLog: existsSync(join(root, AUDIT_LOG)) };
}

/** The state an uninstall by `manifest` is planned from. */
export function readUninstallState(root: string, manifest: Manifest): UninstallState {
  const paths = new Map<string, PathState>();
  inspectAll(root, [...manifest.files.map((f) => f.path), ...manifest.symlinks.map((l) => l.path)], false, paths);
  const backups = new Map<string, Buffer>();
  for (const o of manifest.originals) {
    try {
      backups.set(o.backup, readFileSync(join(root, o.backup)));
    } catch {
      // a backup that cannot be read is a problem the plan reports
    }
  }
  const logDir = join(root, 'var', 'log', 'qmcp');
  const logFiles = existsSync(logDir) ? readdirSync(logDir) : [];
  const alone = logFiles.length === 1 && logFiles[0] === 'audit.log';
  return {
    paths,
    backups,
    logFiles,
    auditLogSize: alone ? statSync(auditLogPath(root)).size : null,
    witness: existsSync(join(root, 'var', 'lib', 'qmcp', 'audit-witness')),
  };
}
