/**
 * `uninstallDom0`: removes exactly what the manifest lists, puts back the
 * operator's files install replaced, and removes the directories install
 * created when they are empty again. Qubes, tags, tombstones and a used
 * audit log are the operator's and stay.
 */
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, readFileSync, readdirSync, readlinkSync, rmSync, rmdirSync, statSync, unlinkSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { auditLogPath } from '../audit/index.js';
import { writeAtomic } from './files.js';
import { MANIFEST_PATH, readManifest } from './manifest.js';
import { daemonReload, disableTimerNow } from './systemd.js';

export interface UninstallReport {
  readonly root: string;
  readonly dryRun: boolean;
  readonly removed: string[];
  /** Operator files put back from their backups. */
  readonly restored: string[];
  /** Files edited since install: removed, with a copy kept here (under ROOT). */
  readonly saved: { path: string; copy: string }[];
  /** Listed but already gone. */
  readonly missing: string[];
  /** What stays, and why: for the operator. */
  readonly kept: string[];
  readonly problems: string[];
}

export class UninstallError extends Error {}

const SAVED_DIR = 'var/lib/qmcp/uninstall-saved';
const SLOTS_DIR = 'var/lib/qmcp/slots';

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function kind(path: string): 'file' | 'link' | 'dir' | 'other' | null {
  try {
    const st = lstatSync(path);
    return st.isSymbolicLink() ? 'link' : st.isFile() ? 'file' : st.isDirectory() ? 'dir' : 'other';
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

export async function uninstallDom0(opts: { root: string; dryRun?: boolean }): Promise<UninstallReport> {
  const root = resolve(opts.root);
  const dryRun = opts.dryRun ?? false;
  const manifest = readManifest(root);
  if (!manifest) throw new UninstallError(`no install manifest at ${join(root, MANIFEST_PATH)}: nothing to uninstall (qmcp is not installed here, or by a version that kept none)`);
  const r: UninstallReport = { root, dryRun, removed: [], restored: [], saved: [], missing: [], kept: [], problems: [] };
  const act = (fn: () => void): void => {
    if (!dryRun) fn();
  };

  if (root === '/' && !dryRun) {
    const p = await disableTimerNow();
    if (p) r.problems.push(p);
  }
  // the policy first: once it is gone no call reaches the services being removed
  const files = [...manifest.files].sort((a, b) => Number(!a.path.startsWith('etc/qubes/policy.d/')) - Number(!b.path.startsWith('etc/qubes/policy.d/')));
  for (const f of files) {
    const path = join(root, f.path);
    const k = kind(path);
    if (k === null) {
      r.missing.push(f.path);
      continue;
    }
    if (k !== 'file') {
      r.kept.push(`${f.path}: no longer a regular file; left in place`);
      continue;
    }
    const content = readFileSync(path);
    if (sha256(content) !== f.sha256) {
      const copy = `${SAVED_DIR}/${f.path}`;
      act(() => writeAtomic(join(root, copy), content, statSync(path).mode & 0o7777));
      r.saved.push({ path: f.path, copy });
    }
    act(() => unlinkSync(path));
    r.removed.push(f.path);
  }
  for (const l of manifest.symlinks) {
    const path = join(root, l.path);
    const k = kind(path);
    if (k === null) r.missing.push(l.path);
    else if (k === 'link' && readlinkSync(path) === l.target) {
      act(() => unlinkSync(path));
      r.removed.push(l.path);
    } else r.kept.push(`${l.path}: not the link install made; left in place`);
  }
  for (const o of manifest.originals) {
    let content: Buffer;
    try {
      content = readFileSync(join(root, o.backup));
    } catch {
      r.problems.push(`${o.path}: its backup ${o.backup} is gone; not restored`);
      continue;
    }
    const mode = /^[0-7]{1,4}$/.test(o.mode) ? parseInt(o.mode, 8) : 0o644;
    act(() => {
      writeAtomic(join(root, o.path), content, mode);
      unlinkSync(join(root, o.backup));
    });
    r.restored.push(o.path);
  }

  const log = auditLogPath(root);
  const logDir = join(root, 'var', 'log', 'qmcp');
  const logFiles = existsSync(logDir) ? readdirSync(logDir) : [];
  const witness = join(root, 'var', 'lib', 'qmcp', 'audit-witness');
  const untouched = manifest.auditLogCreated && logFiles.length === 1 && logFiles[0] === 'audit.log' && statSync(log).size === 0 && !existsSync(witness);
  if (untouched) {
    act(() => unlinkSync(log));
    r.removed.push('var/log/qmcp/audit.log');
  } else if (logFiles.length > 0) r.kept.push('var/log/qmcp: the audit log is yours to keep or delete');
  if (manifest.dirs.includes(SLOTS_DIR)) act(() => rmSync(join(root, SLOTS_DIR), { recursive: true, force: true }));
  act(() => rmSync(join(root, MANIFEST_PATH), { force: true }));
  r.removed.push(MANIFEST_PATH);

  // deepest first, and only when empty
  const dirs = [...manifest.dirs].sort((a, b) => b.split('/').length - a.split('/').length || (a < b ? 1 : -1));
  for (const d of dirs) {
    const path = join(root, d);
    if (kind(path) !== 'dir') continue;
    if (dryRun) continue;
    try {
      rmdirSync(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOTEMPTY' && (err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      r.kept.push(`${d}/: not empty (${readdirSync(path).slice(0, 5).join(', ')}); left in place`);
    }
  }
  r.kept.push('qubes, their tags and tombstones: untouched (remove tags with qvm-tags, tombstones with qmcp dom0 tombstones)');
  if (root === '/' && !dryRun) {
    const p = await daemonReload();
    if (p) r.problems.push(p);
  }
  return r;
}
