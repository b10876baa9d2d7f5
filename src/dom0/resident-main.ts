/**
 * The resident front end of the qmcp dom0 services, run by systemd
 * (qmcp-dom0.service, started by qmcp-dom0.socket). qrexec finds each
 * service as a socket at etc/qubes-rpc/qmcp.*: systemd creates them
 * (root:qubes 0660) and passes them (LISTEN_FDS), so calls made while this
 * process restarts wait in their backlog. Without passed sockets (the
 * simulator, which starts this as systemd would) it binds them itself.
 * Every call goes through the same composition as the per-call executable
 * (service/compose.ts).
 */
import { chmodSync, existsSync, mkdirSync, rmdirSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { pruneAuditLog } from './audit/index.js';
import { serviceNames } from './install/names.js';
import { checkSocketPath } from '../shared/socket-path.js';
import { dom0Host, serveDom0Call } from './service/compose.js';
import { startResident } from './resident/server.js';

/** systemd's first passed descriptor (sd_listen_fds). */
const SD_LISTEN_FDS_START = 3;

function passedSockets(env: NodeJS.ProcessEnv): number[] {
  if (env['LISTEN_PID'] !== String(process.pid)) return [];
  const count = Number(env['LISTEN_FDS']);
  return Number.isInteger(count) && count > 0 ? Array.from({ length: count }, (_, i) => SD_LISTEN_FDS_START + i) : [];
}

function rmdirQuietly(path: string): void {
  try {
    rmdirSync(path);
  } catch {
    // not empty: something else is there too
  }
}

function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // nothing there
  }
}

async function main(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const host = dom0Host(env, 'resident');
  const aggregator = host.audit.aggregator;
  const resident = startResident({ serve: (call) => serveDom0Call(host, call), log: host.log });
  const fds = passedSockets(env);
  const bound: string[] = [];
  // the directory qrexec looks in, when this process had to make it (a fresh simulated root): removed with the sockets
  let madeDir: string | null = null;
  const unbind = (): void => {
    for (const path of bound) unlinkQuietly(path);
    if (madeDir) rmdirQuietly(madeDir);
  };
  // a stop withdraws the calls waiting for the operator, lets the others finish, and removes what it bound;
  // set before anything is bound, so a stop or a crash while binding still removes what was
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    void resident
      .stop()
      .then(() => aggregator?.stop())
      .then(() => {
        unbind();
        process.exit(0);
      });
  };
  process.on('SIGTERM', stop);
  process.on('SIGHUP', stop);
  process.on('SIGINT', stop);
  // an exception no call caught means this process cannot vouch for its state: exit, and systemd starts a clean one
  process.on('uncaughtException', (err) => {
    host.log(`resident: exiting on an uncaught exception: ${err.stack ?? String(err)}`);
    // counts not yet written cannot be written safely now: the operator's channel keeps how many
    const pending = aggregator?.pending() ?? 0;
    if (pending > 0) host.log(`resident: ${pending} counted refusals were not written to the audit log`);
    unbind();
    process.exit(1);
  });
  if (fds.length > 0) {
    for (const fd of fds) await resident.listen({ fd });
  } else {
    const dir = join(host.root, 'etc', 'qubes-rpc');
    // every path checked before any is bound, so a root too deep for them binds none
    for (const name of serviceNames()) checkSocketPath(join(dir, name));
    if (!existsSync(dir)) madeDir = dir;
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    // the sockets are created 0660, never wider for a moment
    const umask = process.umask(0o117);
    for (const name of serviceNames()) {
      const path = join(dir, name);
      unlinkQuietly(path);
      bound.push(path);
      await resident.listen({ path });
      // qrexec connects as root or as the dom0 user: both are in group qubes
      chmodSync(path, 0o660);
    }
    process.umask(umask);
  }
  host.log(`resident: serving ${fds.length || bound.length} qmcp dom0 services (pid ${process.pid})`);
  // rotation prunes as it goes; this catches files that aged past retention while nothing rotated
  await pruneAuditLog(host.audit).catch((err: unknown) => host.log(`resident: audit retention: ${(err as Error).message}`));
}

main().catch((err: unknown) => {
  process.stderr.write(`qmcp resident dom0 service: ${(err as Error)?.message ?? String(err)}\n`);
  process.exit(1);
});
