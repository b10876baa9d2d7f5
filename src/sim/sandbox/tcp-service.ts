// qrexec's TCP services inside a simulated qube, as libqrexec serves them: a
// service that is a symbolic link to /dev/tcp/HOST/PORT, /dev/tcp/HOST (the
// argument is the port) or /dev/tcp (the argument is HOST+PORT, `+` for `:`)
// is a connection to that address made by qrexec itself, not a program
// (qubes-core-qrexec doc/execution.rst, "Symlinks to /dev/tcp/"). Qubes
// ships qubes.ConnectTCP as a link to /dev/tcp/127.0.0.1. Imports stay
// within this directory: it is part of the agent.
import { readlink } from 'node:fs/promises';
import { isIP } from 'node:net';

export interface TcpAddress {
  readonly host: string;
  readonly port: number;
}

/** As libqrexec's validate_port: 1 to 65535 in decimal, no leading zero. */
function portOf(text: string): number | null {
  if (!/^[1-9][0-9]{0,4}$/.test(text)) return null;
  const port = Number(text);
  return port <= 65535 ? port : null;
}

/**
 * The address a TCP service at PATH connects to with ARGUMENT; undefined
 * when PATH is no link to /dev/tcp (an ordinary service), null when the
 * link or the argument makes no address (qrexec fails the call).
 */
export async function tcpServiceAddress(path: string, argument: string): Promise<TcpAddress | null | undefined> {
  let target: string;
  try {
    target = await readlink(path);
  } catch {
    return undefined;
  }
  if (target !== '/dev/tcp' && !target.startsWith('/dev/tcp/')) return undefined;
  const rest = target.slice('/dev/tcp'.length);
  let host: string;
  let port: string;
  if (rest === '') {
    // HOST+PORT, the port after the last `+`; no `_` in the host
    const plus = argument.lastIndexOf('+');
    if (plus < 0 || argument.slice(0, plus).includes('_')) return null;
    host = argument.slice(0, plus).replace(/\+/g, ':');
    port = argument.slice(plus + 1);
  } else {
    const [h = '', p, ...more] = rest.slice(1).split('/');
    if (h === '' || more.length > 0) return null;
    host = h;
    if (p !== undefined) {
      if (argument !== '') return null;
      port = p;
    } else port = argument;
  }
  const number = portOf(port);
  // numeric hosts only (AI_NUMERICHOST)
  if (number === null || isIP(host) === 0) return null;
  return { host, port: number };
}
