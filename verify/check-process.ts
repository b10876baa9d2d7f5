/**
 * Runs a check in a process of its own (verify/check-main.ts), the leader of
 * its own process group, with a temporary directory of its own as TMPDIR:
 * whatever the check leaves behind, or was doing when the run was stopped,
 * is killed and removed with it.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { CheckReport } from './check.js';
import { CHECK_MAIN, crashReport } from './check.js';
import { alive, killTree } from './process-tree.js';

/** The environment variable naming the directory a check process owns (its TMPDIR). */
export const CHECK_DIR = 'QMCP_VERIFY_CHECK_DIR';

/** What ran: the report, and the pids killed after it (nothing a finished check left running). */
export interface Finished {
  readonly report: CheckReport;
  readonly leftover: readonly number[];
}

export class CheckProcesses {
  private readonly live = new Map<ChildProcess, string>();
  private serial = 0;
  private stopping = false;

  /** `dir` holds the checks' temporary directories; it is removed by stop(). */
  constructor(
    private readonly dir: string,
    private readonly env: NodeJS.ProcessEnv,
  ) {}

  /**
   * Runs check `name` in its own process; a process that ends without a
   * report is a crashed check, unless stop() ended it: then this never
   * settles, and whoever stopped the run ends it.
   */
  run(name: string, scale: number, seed: number): Promise<Finished> {
    const tmp = join(this.dir, String(this.serial++));
    mkdirSync(tmp);
    const child = spawn(process.execPath, [CHECK_MAIN, name, String(scale), String(seed)], {
      env: { ...this.env, TMPDIR: tmp, [CHECK_DIR]: tmp },
      // its own group: a terminal's ^C reaches only this process, which stops the checks itself
      detached: true,
      // the table is the run's stdout: whatever a check prints goes to stderr
      stdio: ['ignore', 2, 2, 'ipc'],
    });
    this.live.set(child, tmp);
    let report: CheckReport | null = null;
    child.on('message', (m) => (report = m as CheckReport));
    return new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.live.delete(child);
        if (this.stopping) return;
        const leftover = this.reap(child, tmp);
        resolve({ report: report ?? crashReport(name, `the check's process ended (${signal ?? `exit status ${String(code)}`}) without a report`, seed, scale), leftover });
      });
    });
  }

  /** Kills what is left of a check process's group and tree, and removes its directory. */
  private reap(child: ChildProcess, tmp: string): number[] {
    const killed = child.pid === undefined ? [] : killTree(child.pid).filter((p) => p !== child.pid);
    rmSync(tmp, { recursive: true, force: true });
    return killed;
  }

  /**
   * Stops every check still running: kills each process tree, waits until
   * none of them is alive, and removes the directories (again, should a
   * dying process have written into one meanwhile).
   */
  async stop(): Promise<void> {
    this.stopping = true;
    const dying: { child: ChildProcess; tree: number[] }[] = [];
    for (const child of this.live.keys()) if (child.pid !== undefined) dying.push({ child, tree: killTree(child.pid) });
    await Promise.all(dying.map(({ child }) => (child.exitCode !== null || child.signalCode !== null ? null : new Promise((r) => child.once('exit', r)))));
    // the grandchildren are not ours to wait for: look until they are gone
    for (let pids = dying.flatMap((d) => d.tree); pids.length > 0; pids = pids.filter(alive)) {
      for (const pid of pids) killTree(pid);
      await new Promise((r) => setTimeout(r, 10));
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
