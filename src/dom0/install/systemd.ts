/**
 * Enabling the reaper timer. Under any ROOT, the symlink that
 * `systemctl --root ROOT enable` makes; on a real dom0 (`/`) also
 * `systemctl daemon-reload` and `enable --now`, so the timer runs.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

export const TIMER_NAME = 'qmcp-reaper.timer';
export const TIMER_WANTS_LINK = `etc/systemd/system/timers.target.wants/${TIMER_NAME}`;
/** The link's target, as systemctl writes it. */
export const TIMER_LINK_TARGET = `/etc/systemd/system/${TIMER_NAME}`;

const run = promisify(execFile);

/** Runs systemctl on the live system; resolves to a problem for the operator, or null. */
export async function enableTimerNow(): Promise<string | null> {
  for (const args of [['daemon-reload'], ['enable', '--now', TIMER_NAME]]) {
    try {
      await run('systemctl', args, { timeout: 60_000 });
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      return `systemctl ${args.join(' ')} failed: ${(e.stderr ?? '').trim() || e.message}`;
    }
  }
  return null;
}

/** Stops and disables the timer on the live system before its units go. */
export async function disableTimerNow(): Promise<string | null> {
  try {
    await run('systemctl', ['disable', '--now', TIMER_NAME], { timeout: 60_000 });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    return `systemctl disable --now ${TIMER_NAME} failed: ${(e.stderr ?? '').trim() || e.message}`;
  }
  return null;
}

export async function daemonReload(): Promise<string | null> {
  try {
    await run('systemctl', ['daemon-reload'], { timeout: 60_000 });
  } catch (err) {
    return `systemctl daemon-reload failed: ${(err as Error).message}`;
  }
  return null;
}
