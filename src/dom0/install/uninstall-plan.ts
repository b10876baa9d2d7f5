/**
 * The uninstall plan: from the manifest and what ROOT holds now, what
 * uninstall removes, restores and leaves, each with its reason. A function
 * of its inputs alone; only what the manifest lists is ever touched, so the
 * operator's own files stay where they are.
 */
import { sha256 } from './files.js';
import type { Manifest } from './manifest.js';
import { MANIFEST_PATH } from './manifest.js';
import type { PathState } from './install-plan.js';
import { AUDIT_LOG } from './install-plan.js';

export const SAVED_DIR = 'var/lib/qmcp/uninstall-saved';
const SLOTS_DIR = 'var/lib/qmcp/slots';

/** What uninstall finds under ROOT. */
export interface UninstallState {
  /** The files and links the manifest lists; one not here is gone. */
  readonly paths: ReadonlyMap<string, PathState>;
  /** The originals' backups that can be read, by their path. */
  readonly backups: ReadonlyMap<string, Buffer>;
  /** What var/log/qmcp holds. */
  readonly logFiles: readonly string[];
  /** The audit log's size when it is alone in var/log/qmcp; null otherwise. */
  readonly auditLogSize: number | null;
  /** Whether the audit chain's head was ever witnessed. */
  readonly witness: boolean;
}

export type UninstallStep =
  | { readonly do: 'remove'; readonly path: string; readonly reason: string; readonly save: { readonly copy: string; readonly content: Buffer; readonly mode: number } | null }
  | { readonly do: 'restore'; readonly path: string; readonly backup: string; readonly content: Buffer; readonly mode: number }
  /** Removed whole: the services' lock files, qmcp's own. */
  | { readonly do: 'remove-tree'; readonly path: string }
  | { readonly do: 'leave'; readonly path: string; readonly reason: string }
  | { readonly do: 'gone'; readonly path: string }
  | { readonly do: 'problem'; readonly message: string };

export interface UninstallPlan {
  /** In the order uninstall takes them: the policy first, so no call reaches a service being removed. */
  readonly steps: readonly UninstallStep[];
  /** Directories install created, deepest first: each removed if empty once the steps are done. */
  readonly dirs: readonly string[];
}

export function planUninstall(manifest: Manifest, state: UninstallState): UninstallPlan {
  const steps: UninstallStep[] = [];
  const isPolicy = (path: string): number => Number(!path.startsWith('etc/qubes/policy.d/'));
  for (const f of [...manifest.files].sort((a, b) => isPolicy(a.path) - isPolicy(b.path))) {
    const now = state.paths.get(f.path);
    if (!now) steps.push({ do: 'gone', path: f.path });
    else if (!now.regular) steps.push({ do: 'leave', path: f.path, reason: 'no longer a regular file; left in place' });
    else if (sha256(now.content) === f.sha256) steps.push({ do: 'remove', path: f.path, reason: 'as install wrote it', save: null });
    else {
      const copy = `${SAVED_DIR}/${f.path}`;
      steps.push({ do: 'remove', path: f.path, reason: `edited since install: a copy is kept at ${copy}`, save: { copy, content: now.content, mode: now.mode } });
    }
  }
  for (const l of manifest.symlinks) {
    const now = state.paths.get(l.path);
    if (!now) steps.push({ do: 'gone', path: l.path });
    else if (now.link === l.target) steps.push({ do: 'remove', path: l.path, reason: 'the link install made', save: null });
    else steps.push({ do: 'leave', path: l.path, reason: 'not the link install made; left in place' });
  }
  for (const o of manifest.originals) {
    const content = state.backups.get(o.backup);
    if (content === undefined) steps.push({ do: 'problem', message: `${o.path}: its backup ${o.backup} is gone; not restored` });
    else steps.push({ do: 'restore', path: o.path, backup: o.backup, content, mode: /^[0-7]{1,4}$/.test(o.mode) ? parseInt(o.mode, 8) : 0o644 });
  }
  if (manifest.auditLogCreated && state.auditLogSize === 0 && !state.witness) {
    steps.push({ do: 'remove', path: AUDIT_LOG, reason: 'created empty by install and never written', save: null });
  } else if (state.logFiles.length > 0) steps.push({ do: 'leave', path: 'var/log/qmcp', reason: 'the audit log is yours to keep or delete' });
  if (manifest.dirs.includes(SLOTS_DIR)) steps.push({ do: 'remove-tree', path: SLOTS_DIR });
  steps.push({ do: 'remove', path: MANIFEST_PATH, reason: 'the record of the install', save: null });
  const dirs = [...manifest.dirs].sort((a, b) => b.split('/').length - a.split('/').length || (a < b ? 1 : -1));
  return { steps, dirs };
}
