/**
 * The length bound on a Unix socket's path. Node's listen does not check
 * it: a longer path is bound cut short, somewhere else, and the socket is
 * then missing where its clients (and a chmod) look for it.
 */
import { QmcpError } from './errors.js';

/** sun_path's size, its terminating NUL included: 108 bytes on Linux, 104 on the BSDs and macOS. */
export const SOCKET_PATH_BYTES = process.platform === 'linux' ? 108 : 104;

export class SocketPathError extends QmcpError {
  readonly code = 'ERR_QMCP_SOCKET_PATH';
}

/** Why PATH cannot be bound as a Unix socket, or null when it can. */
export function socketPathProblem(path: string): string | null {
  const bytes = Buffer.byteLength(path);
  if (bytes < SOCKET_PATH_BYTES) return null;
  return `cannot bind a Unix socket at ${path}: the path is ${bytes} bytes, and a socket's path is at most ${SOCKET_PATH_BYTES - 1} (${SOCKET_PATH_BYTES} with its terminating NUL); use a shorter directory`;
}

/** Throws SocketPathError, before anything is bound or removed, unless PATH fits a Unix socket's address. */
export function checkSocketPath(path: string): void {
  const problem = socketPathProblem(path);
  if (problem !== null) throw new SocketPathError(problem);
}
