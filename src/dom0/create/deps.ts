/** What the write services need beyond the runner's context, injectable for tests. */
import { join, resolve } from 'node:path';
import type { HeldLock } from '../lockfile.js';
import { operatorLog } from '../operator-log.js';
import type { WriteSettings } from './settings.js';
import { readWriteSettings } from './settings.js';

export interface WriteDeps {
  /** The dom0 root ('/' on a real machine). */
  readonly root: string;
  settings(): WriteSettings;
  /** The operator's journal. */
  log(message: string): void;
  now(): Date;
  /** Test seam: awaited at each named step of a create (and once a remove or a restore holds the budget lock); a throw (or rejection) is an injected fault. */
  fault?(step: string): void | Promise<void>;
  /** How long to wait for the budget lock before refusing, ms. */
  readonly lockWaitMs?: number;
  /** Test seam: takes the budget lock in place of the lock file (to watch it, or to remove it). */
  budgetLock?(root: string, waitMs: number): Promise<HeldLock | null>;
}

/** Dependencies as a dom0 service process sees them, from QMCP_ROOT; the settings are the caller's principal's (QREXEC_REMOTE_DOMAIN). */
export function processDeps(env: NodeJS.ProcessEnv = process.env, log?: (m: string) => void): WriteDeps {
  const root = resolve(env['QMCP_ROOT'] || '/');
  const journal = log ?? operatorLog(root);
  return {
    root,
    settings: () => readWriteSettings(root, journal, env['QREXEC_REMOTE_DOMAIN']),
    log: journal,
    now: () => new Date(),
  };
}

export function stateDir(root: string): string {
  return join(root, 'var', 'lib', 'qmcp');
}
