/** Carries out an install plan under ROOT: every write atomic, the manifest last. */
import { chownSync, mkdirSync, rmSync, symlinkSync, unlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { initAuditLog } from '../audit/index.js';
import { writeAtomic } from './files.js';
import type { InstallPlan } from './install-plan.js';
import { AUDIT_LOG, STATE_DIRS } from './install-plan.js';
import type { ServiceMode } from './manifest.js';
import { enableTimerNow, startResidentNow, stopResidentNow } from './systemd.js';

export interface Applied {
  /** Backups of replaced files, under ROOT. */
  readonly backups: string[];
  /** On a real dom0: why the reaper timer (or the resident service) could not be enabled and started; null when it was (or ROOT is not `/`). */
  readonly timerProblem: string | null;
}

export interface ApplyOptions {
  readonly serviceMode: ServiceMode;
  /** The user the dom0 services run as gets the audit log and qmcp's state directories. */
  readonly serviceOwner?: { readonly uid: number; readonly gid: number };
  /** Whether each write waits for the disk (default true). */
  readonly durable?: boolean;
}

export async function applyInstall(root: string, plan: InstallPlan, o: ApplyOptions): Promise<Applied> {
  const live = root === '/';
  const serviceOwner = o.serviceOwner;
  const durable = o.durable ?? true;
  // the executables go where systemd's sockets were: those are removed first
  if (live && o.serviceMode === 'per-call') await stopResidentNow();
  await initAuditLog(root);
  // the services' per-principal concurrency slots (run as the dom0 user)
  mkdirSync(join(root, 'var', 'lib', 'qmcp', 'slots'), { recursive: true, mode: 0o750 });
  if (serviceOwner) {
    for (const p of [...STATE_DIRS, AUDIT_LOG]) chownSync(join(root, p), serviceOwner.uid, serviceOwner.gid);
  }
  const backups: string[] = [];
  const written = new Set([...plan.files.map((f) => f.path), plan.link.path]);
  for (const o of plan.originals) {
    writeAtomic(join(root, o.backup), o.content, 0o600, durable);
    backups.push(o.backup);
    // kept whole above; where install writes nothing (a socket's place), it is moved aside
    if (!written.has(o.path)) rmSync(join(root, o.path), { force: true });
  }
  for (const f of plan.files) {
    if (f.status === 'unchanged') continue;
    if (f.backup) {
      writeAtomic(join(root, f.backup.path), f.backup.content, 0o600, durable);
      backups.push(f.backup.path);
    }
    writeAtomic(join(root, f.path), f.content, f.mode, durable);
  }
  if (plan.link.status !== 'unchanged') {
    const link = join(root, plan.link.path);
    mkdirSync(dirname(link), { recursive: true, mode: 0o755 });
    rmSync(link, { force: true });
    symlinkSync(plan.link.target, link);
  }
  for (const s of plan.stale) {
    try {
      if (s.copy) {
        writeAtomic(join(root, s.copy.path), s.copy.content, 0o600, durable);
        backups.push(s.copy.path);
      }
      unlinkSync(join(root, s.path));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  if (plan.manifest.status !== 'unchanged') writeAtomic(join(root, plan.manifest.path), plan.manifest.content, plan.manifest.mode, durable);
  if (!live) return { backups, timerProblem: null };
  const timerProblem = await enableTimerNow();
  const residentProblem = o.serviceMode === 'resident' ? await startResidentNow() : null;
  return { backups, timerProblem: [timerProblem, residentProblem].filter((p) => p !== null).join('; ') || null };
}
