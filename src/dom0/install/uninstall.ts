/**
 * `uninstallDom0`: removes exactly what the manifest lists, puts back the
 * operator's files install replaced, and removes the directories install
 * created when they are empty again. Qubes, tags, tombstones and a used
 * audit log are the operator's and stay. The plan (uninstall-plan.ts) says
 * what happens to each path, uninstall-apply.ts carries it out.
 */
import { join, resolve } from 'node:path';
import { MANIFEST_PATH, readManifest } from './manifest.js';
import { readUninstallState } from './root-state.js';
import { applyUninstall } from './uninstall-apply.js';
import { planUninstall } from './uninstall-plan.js';
import { daemonReload, disableTimerNow, stopResidentNow } from './systemd.js';
import { QmcpError } from '../../shared/errors.js';

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

export class UninstallError extends QmcpError {
  readonly code = 'ERR_QMCP_UNINSTALL';
}

export async function uninstallDom0(opts: { root: string; dryRun?: boolean }): Promise<UninstallReport> {
  const root = resolve(opts.root);
  const dryRun = opts.dryRun ?? false;
  const manifest = readManifest(root);
  if (!manifest) throw new UninstallError(`no install manifest at ${join(root, MANIFEST_PATH)}: nothing to uninstall (qmcp is not installed here, or by a version that kept none)`);
  const problems: string[] = [];
  // before the state is read: disabling the timer removes its link
  if (root === '/' && !dryRun) {
    const p = await disableTimerNow();
    if (p) problems.push(p);
    // systemd removes the resident service's sockets as it stops them
    if (manifest.options.serviceMode === 'resident') {
      const q = await stopResidentNow();
      if (q) problems.push(q);
    }
  }
  const plan = planUninstall(manifest, readUninstallState(root, manifest));
  const r: UninstallReport = { root, dryRun, removed: [], restored: [], saved: [], missing: [], kept: [], problems };
  for (const step of plan.steps) {
    if (step.do === 'remove') {
      r.removed.push(step.path);
      if (step.save) r.saved.push({ path: step.path, copy: step.save.copy });
    } else if (step.do === 'restore') r.restored.push(step.path);
    else if (step.do === 'leave') r.kept.push(`${step.path}: ${step.reason}`);
    else if (step.do === 'gone') r.missing.push(step.path);
    else if (step.do === 'problem') r.problems.push(step.message);
  }
  if (!dryRun) r.kept.push(...applyUninstall(root, plan));
  r.kept.push('qubes, their tags and tombstones: untouched (remove tags with qvm-tags, tombstones with qmcp dom0 tombstones)');
  if (root === '/' && !dryRun) {
    const p = await daemonReload();
    if (p) r.problems.push(p);
  }
  return r;
}
