/**
 * qvm-connect-tcp for qubes of the simulated host (bin/qvm-connect-tcp). As
 * Qubes' own, `qvm-connect-tcp [LOCALPORT]:TARGET:PORT` listens on
 * LOCALPORT (PORT when empty) and makes one qubes.ConnectTCP+PORT call to
 * TARGET per connection, the connection being the call's stdin and stdout.
 * Qubes' runs socat for it, which simulated qubes lack (they run the
 * host's /usr), so this listens itself, in the qube's network namespace.
 * It listens on 127.0.0.1 only, where socat takes every address: a real
 * qube's firewall refuses what comes in, but a demo qube shares the
 * host's network. Node stdlib only.
 */
import { createServer } from 'node:net';
import type { Server } from 'node:net';
import { PassThrough } from 'node:stream';
import { qrexecCall } from './client.js';

export interface ConnectSpec {
  readonly localPort: number;
  readonly target: string;
  readonly port: number;
}

const USAGE = 'Usage: qvm-connect-tcp [localport]:[vmname]:[port]\nBind localport to another VM port using the qubes.ConnectTCP RPC service.\n';

function portOf(text: string): number | null {
  if (!/^[0-9]{1,5}$/.test(text)) return null;
  const n = Number(text);
  return n >= 1 && n <= 65535 ? n : null;
}

/** LOCALPORT:TARGET:PORT as Qubes' script reads it, or what is wrong. */
export function parseConnectSpec(arg: string): ConnectSpec | string {
  const [local = '', target = '', port = ''] = arg.split(':');
  if (port === '') return 'Please provide PORT';
  const p = portOf(port);
  const l = portOf(local === '' ? port : local);
  if (p === null || l === null) return 'Invalid port provided';
  // Qubes' would call @default for an empty name; nothing here needs it
  if (target === '') return 'Please provide the target qube';
  return { localPort: l, target, port: p };
}

/** Listens for SPEC; each connection is one call through the router socket SOCKETPATH. */
export function listenConnectTcp(socketPath: string, spec: ConnectSpec): Promise<Server> {
  const server = createServer((conn) => {
    conn.on('error', () => undefined);
    const gone = new AbortController();
    conn.once('close', () => gone.abort());
    // the service's stderr is qrexec-client-vm's, which socat leaves on its own
    const stderr = new PassThrough();
    stderr.resume();
    void qrexecCall(socketPath, spec.target, `qubes.ConnectTCP+${spec.port}`, { stdin: conn, stdout: conn, stderr }, gone.signal).then(() => conn.end());
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: spec.localPort }, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}

/** The command: prints what it binds and serves until it is killed; resolves to an exit status only on failure. */
export async function connectTcpMain(args: readonly string[], socketPath: string, out: NodeJS.WritableStream, err: NodeJS.WritableStream): Promise<number> {
  if (args.length < 1 || args[0] === undefined) {
    err.write(USAGE);
    return 1;
  }
  const spec = parseConnectSpec(args[0]);
  if (typeof spec === 'string') {
    out.write(`${spec}\n`);
    if (spec.startsWith('Invalid')) err.write(USAGE);
    return 1;
  }
  out.write(`Binding TCP '${spec.target}:${spec.port}' to 'localhost:${spec.localPort}'...\n`);
  try {
    await listenConnectTcp(socketPath, spec);
  } catch (e) {
    err.write(`qvm-connect-tcp: cannot listen on port ${spec.localPort}: ${(e as Error).message}\n`);
    return 1;
  }
  return new Promise<number>(() => undefined);
}
