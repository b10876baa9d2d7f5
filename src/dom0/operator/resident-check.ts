/** doctor's check of the resident dom0 service: every service a socket, and something accepting calls on them. */
import { statSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { readManifest } from '../install/manifest.js';
import { serviceNames } from '../install/names.js';
import type { Check } from './doctor.js';

function isSocket(path: string): boolean {
  try {
    return statSync(path).isSocket();
  } catch {
    return false;
  }
}

/** What systemd's SocketMode= sets (and the simulator's service sets): root and group qubes only. */
const SOCKET_MODE = 0o660;

function socketModeOk(path: string): boolean {
  try {
    return (statSync(path).mode & 0o777) === SOCKET_MODE;
  } catch {
    return false;
  }
}

/** Connects and leaves at once: the service refuses a connection without a descriptor, and journals it. */
function accepts(path: string): Promise<string | null> {
  return new Promise((resolve) => {
    const sock = connect(path, () => {
      sock.destroy();
      resolve(null);
    });
    sock.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
  });
}

/** null when the install is per-call. */
export async function residentCheck(root: string): Promise<Check | null> {
  const manifest = readManifest(root);
  if (!manifest || manifest.options.serviceMode !== 'resident') return null;
  const paths = serviceNames().map((s) => join(root, 'etc', 'qubes-rpc', s));
  const missing = paths.filter((p) => !isSocket(p));
  const check = 'resident';
  if (missing.length > 0) {
    return {
      check,
      status: 'FAIL',
      message: `${missing.length} of ${paths.length} dom0 services have no socket (every call to them fails): systemctl status qmcp-dom0.socket qmcp-dom0.service`,
    };
  }
  const wrongMode = paths.filter((p) => isSocket(p) && !socketModeOk(p));
  if (wrongMode.length > 0) {
    return {
      check,
      status: 'FAIL',
      message: `${wrongMode.length} dom0 service sockets are not mode ${SOCKET_MODE.toString(8)} (qrexec connects as a member of group qubes, nobody else may): systemctl restart qmcp-dom0.socket`,
    };
  }
  const problem = await accepts(paths[0] as string);
  if (problem) return { check, status: 'FAIL', message: `nothing accepts calls on the dom0 service sockets (${problem}): systemctl status qmcp-dom0.socket qmcp-dom0.service` };
  return { check, status: 'ok', message: `the ${paths.length} dom0 services are sockets of the resident service, and it accepts calls` };
}
