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

/** The resident dom0 service's units: systemd holds the sockets and starts the service. */
export const RESIDENT_SOCKET = 'qmcp-dom0.socket';
export const RESIDENT_SERVICE = 'qmcp-dom0.service';

async function systemctl(args: readonly string[]): Promise<string | null> {
  try {
    await run('systemctl', [...args], { timeout: 60_000 });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    return `systemctl ${args.join(' ')} failed: ${(e.stderr ?? '').trim() || e.message}`;
  }
  return null;
}

/** Enables and starts the resident service's sockets, and restarts the service so it runs the code just installed. */
export async function startResidentNow(): Promise<string | null> {
  return (await systemctl(['daemon-reload'])) ?? (await systemctl(['enable', '--now', RESIDENT_SOCKET])) ?? (await systemctl(['try-restart', RESIDENT_SERVICE]));
}

/** Stops and disables the resident service and its sockets (systemd removes the socket files). */
export async function stopResidentNow(): Promise<string | null> {
  return systemctl(['disable', '--now', RESIDENT_SOCKET, RESIDENT_SERVICE]);
}

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
