/**
 * The install plan: from the files this version renders and what ROOT
 * holds now, what install writes, leaves, keeps a copy of and removes, each
 * with its reason. A function of its inputs alone: `applyInstall` carries a
 * plan out, the dry run and diff show it, and doctor reads it (installed
 * files with nothing to do are in order).
 */
import { sep } from 'node:path';
import { unifiedDiff } from './diff.js';
import type { FileStatus, PlannedFile } from './files.js';
import { backupPath, sha256 } from './files.js';
import type { Manifest } from './manifest.js';
import { MANIFEST_PATH, manifestText } from './manifest.js';
import { TIMER_LINK_TARGET, TIMER_WANTS_LINK } from './systemd.js';

/** Directories install makes beside its files (audit log, witness, slots, backups). */
export const STATE_DIRS = ['var/log/qmcp', 'var/lib/qmcp', 'var/lib/qmcp/slots'];
export const AUDIT_LOG = 'var/log/qmcp/audit.log';

/** One path under ROOT as it is now; a path with nothing there has no state. */
export type PathState =
  /** A regular file: its bytes and mode. */
  | { readonly regular: true; readonly link: null; readonly content: Buffer; readonly mode: number }
  /** Anything else: a link (its target, and what reading through it finds, if anything), a directory, a device. */
  | { readonly regular: false; readonly link: string | null; readonly content: Buffer | null; readonly mode: number | null };

/** What install finds under ROOT. */
export interface InstallState {
  /** The manifest of the install before this one, if any. */
  readonly manifest: Manifest | null;
  /** The paths install may write or remove; one not here is absent. */
  readonly paths: ReadonlyMap<string, PathState>;
  /** The directories among those install may create that exist already. */
  readonly dirs: ReadonlySet<string>;
  readonly auditLog: boolean;
}

/** The files this version renders, and what they were rendered for. */
export interface RenderedInstall {
  readonly planned: readonly PlannedFile[];
  /** Paths install writes no file to but must keep free (the resident service's sockets): an operator's file there is kept and moved aside. */
  readonly occupied?: readonly string[];
  readonly options: Manifest['options'];
}

export interface FileStep extends PlannedFile {
  /** 'unchanged': install leaves it; otherwise it writes it. */
  readonly status: FileStatus;
  readonly reason: string;
  /** Where the content it replaces is kept first (an edit, neither the operator's original nor an earlier install's own). */
  readonly backup: { readonly path: string; readonly content: Buffer } | null;
  /** What changes, for text files under etc/ that change; '' otherwise. */
  readonly diff: string;
}

/** An operator's file install writes over for the first time: kept whole, restored by uninstall. */
export interface OriginalStep {
  readonly path: string;
  readonly backup: string;
  readonly content: Buffer;
  readonly mode: number;
}

/** A file or link an earlier install made that this version no longer has: removed. */
export interface StaleStep {
  readonly path: string;
  readonly kind: 'file' | 'link';
  readonly reason: string;
  /** A copy kept first when it was edited since. */
  readonly copy: { readonly path: string; readonly content: Buffer } | null;
}

export interface LinkStep {
  readonly path: string;
  readonly target: string;
  readonly status: FileStatus;
  readonly reason: string;
}

export interface InstallPlan {
  /** This version's files, in the order install writes them. */
  readonly files: readonly FileStep[];
  /** The reaper timer's enablement, as `systemctl enable` makes it. */
  readonly link: LinkStep;
  readonly originals: readonly OriginalStep[];
  readonly stale: readonly StaleStep[];
  /** The manifest of this install, written last so it never lists a file not yet there. */
  readonly manifest: FileStep;
}

/** Every ancestor directory of a ROOT-relative path, shallowest first. */
function ancestors(path: string): string[] {
  const parts = path.split('/');
  return parts.slice(0, -1).map((_, i) => parts.slice(0, i + 1).join('/'));
}

function originalBackup(path: string, content: Buffer): string {
  return `${backupPath(path, content)}.original`.split(sep).join('/');
}

/** The directories an install of `paths` needs, with those of the backups it keeps. */
function dirsNeeded(paths: readonly string[], backups: readonly string[]): Set<string> {
  const out = new Set([...STATE_DIRS.flatMap((d) => ancestors(`${d}/-`)), ...ancestors(TIMER_WANTS_LINK)]);
  for (const p of [...paths, ...backups]) for (const d of ancestors(p)) out.add(d);
  return out;
}

/** Every directory an install of these paths could create: the ones whose existence its plan depends on. */
export function dirsInstallMayCreate(paths: readonly string[]): string[] {
  return [...dirsNeeded(paths, [...paths, TIMER_WANTS_LINK].map((p) => originalBackup(p, Buffer.alloc(0))))];
}

function statusOf(file: PlannedFile, now: PathState | null): FileStatus {
  if (!now || now.content === null) return 'new';
  return now.content.equals(file.content) && now.mode === file.mode ? 'unchanged' : 'changed';
}

function diffOf(file: PlannedFile, status: FileStatus, now: PathState | null): string {
  return status !== 'unchanged' && file.path.startsWith('etc/') ? unifiedDiff(file.path, now?.content ?? null, file.content) : '';
}

/** Regular files where install writes that neither an earlier install wrote nor one already kept. */
function newOriginals(rendered: RenderedInstall, state: InstallState): OriginalStep[] {
  const previous = state.manifest;
  const known = new Set([...(previous?.files ?? []), ...(previous?.symlinks ?? []), ...(previous?.originals ?? [])].map((x) => x.path));
  const out: OriginalStep[] = [];
  for (const path of [...rendered.planned.map((f) => f.path), TIMER_WANTS_LINK, ...(rendered.occupied ?? [])]) {
    const now = state.paths.get(path);
    if (known.has(path) || !now?.regular) continue;
    known.add(path);
    out.push({ path, backup: originalBackup(path, now.content), content: now.content, mode: now.mode });
  }
  return out;
}

function fileStep(f: PlannedFile, now: PathState | null, previous: Manifest | null, originals: readonly OriginalStep[]): FileStep {
  const status = statusOf(f, now);
  const step = { ...f, status, diff: diffOf(f, status, now) };
  const current = now?.content ?? null;
  if (status === 'unchanged') return { ...step, reason: 'as this version renders it', backup: null };
  if (current === null) return { ...step, reason: 'not installed yet', backup: null };
  const original = originals.find((o) => o.path === f.path);
  if (original) return { ...step, reason: `the operator's own file: kept whole at ${original.backup} for uninstall to restore`, backup: null };
  if (previous?.files.some((p) => p.path === f.path && p.sha256 === sha256(current))) {
    return { ...step, reason: 'as an earlier install wrote it: rewritten as this version renders it', backup: null };
  }
  if (current.equals(f.content)) return { ...step, reason: 'only its mode differs', backup: null };
  const backup = backupPath(f.path, current);
  return { ...step, reason: `edited since install: what it holds now is kept at ${backup}`, backup: { path: backup, content: current } };
}

function nextManifest(rendered: RenderedInstall, state: InstallState, originals: readonly OriginalStep[]): Manifest {
  const previous = state.manifest;
  const created = new Set(previous?.dirs ?? []);
  const wanted = dirsNeeded(
    rendered.planned.map((f) => f.path),
    originals.map((o) => o.backup),
  );
  for (const d of wanted) if (!state.dirs.has(d)) created.add(d);
  const listed = rendered.planned.map((f) => ({ path: f.path, sha256: sha256(f.content), mode: f.mode.toString(8) }));
  listed.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const kept = [...(previous?.originals ?? []), ...originals.map((o) => ({ path: o.path, backup: o.backup, mode: o.mode.toString(8) }))];
  return {
    format: 2,
    options: rendered.options,
    files: listed,
    symlinks: [{ path: TIMER_WANTS_LINK, target: TIMER_LINK_TARGET }],
    originals: kept.sort((a, b) => (a.path < b.path ? -1 : 1)),
    dirs: [...created].sort(),
    auditLogCreated: (previous?.auditLogCreated ?? false) || !state.auditLog,
  };
}

function staleSteps(rendered: RenderedInstall, state: InstallState): StaleStep[] {
  const owned = new Set(rendered.planned.map((f) => f.path));
  const files = (state.manifest?.files ?? []).filter((f) => !owned.has(f.path));
  const links = (state.manifest?.symlinks ?? []).filter((l) => l.path !== TIMER_WANTS_LINK);
  return [
    ...files.map((old): StaleStep => {
      const now = state.paths.get(old.path);
      const content = now?.regular ? now.content : null;
      if (content === null || sha256(content) === old.sha256) return { path: old.path, kind: 'file', reason: 'no longer rendered by this version', copy: null };
      const copy = backupPath(old.path, content);
      return { path: old.path, kind: 'file', reason: `no longer rendered by this version; edited since install, so a copy is kept at ${copy}`, copy: { path: copy, content } };
    }),
    ...links.map((l): StaleStep => ({ path: l.path, kind: 'link', reason: 'a link this version no longer makes', copy: null })),
  ];
}

export function planInstall(rendered: RenderedInstall, state: InstallState): InstallPlan {
  const at = (path: string): PathState | null => state.paths.get(path) ?? null;
  const originals = newOriginals(rendered, state);
  const manifestFile: PlannedFile = { path: MANIFEST_PATH, content: Buffer.from(manifestText(nextManifest(rendered, state, originals))), mode: 0o644 };
  const manifestStatus = statusOf(manifestFile, at(MANIFEST_PATH));
  const link = at(TIMER_WANTS_LINK);
  const linkStatus: FileStatus = !link ? 'new' : link.link === TIMER_LINK_TARGET ? 'unchanged' : 'changed';
  return {
    files: rendered.planned.map((f) => fileStep(f, at(f.path), state.manifest, originals)),
    link: {
      path: TIMER_WANTS_LINK,
      target: TIMER_LINK_TARGET,
      status: linkStatus,
      reason: linkStatus === 'unchanged' ? 'the reaper timer is enabled' : 'enables the reaper timer',
    },
    originals,
    stale: staleSteps(rendered, state),
    manifest: {
      ...manifestFile,
      status: manifestStatus,
      diff: diffOf(manifestFile, manifestStatus, at(MANIFEST_PATH)),
      reason: manifestStatus === 'unchanged' ? 'lists this install as it is' : 'the record of this install, for uninstall and doctor',
      backup: null,
    },
  };
}

/**
 * What an install would still change in the installed files (the manifest's
 * own record and the reaper timer, which doctor checks apart, aside): both
 * empty when the files are what this version renders.
 */
export function pendingFileChanges(plan: InstallPlan): { differ: string[]; extra: string[] } {
  return {
    differ: plan.files.filter((f) => f.status !== 'unchanged').map((f) => f.path),
    extra: plan.stale.filter((s) => s.kind === 'file').map((s) => s.path),
  };
}
