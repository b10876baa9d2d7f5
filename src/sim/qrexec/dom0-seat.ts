/**
 * dom0's own seat on the simulated router, for `qrexec-client -d QUBE
 * 'USER:QUBESRPC SERVICE+ARG dom0'`, which Qubes' tools in dom0 use to call
 * into a qube: the call goes to the qube without asking the policy. The
 * socket sits beside the router's, outside every qube's reach, and the
 * simulated dom0 gets a drop-in `usr/lib/qubes/qrexec-client` that uses it.
 */
import { mkdirSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { shQuote } from '../../dom0/install/wrapper.js';
import { checkSocketPath } from '../../shared/socket-path.js';

const CLIENT_MAIN = fileURLToPath(new URL('./dom0-client-main.js', import.meta.url));

export interface Dom0Seat {
  close(): Promise<void>;
}

export function listenDom0Seat(path: string, serve: (sock: Socket) => void): Promise<Dom0Seat> {
  checkSocketPath(path);
  try {
    unlinkSync(path);
  } catch {
    // nothing stale
  }
  const live = new Set<Socket>();
  const server = createServer({ allowHalfOpen: true }, (sock) => {
    live.add(sock);
    sock.on('close', () => live.delete(sock));
    serve(sock);
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () =>
      resolve({
        close: () => {
          for (const s of live) s.destroy();
          return new Promise<void>((done) => server.close(() => done()));
        },
      }),
    );
  });
}

/** Writes DOM0ROOT/usr/lib/qubes/qrexec-client, every start: the node, the code and the socket may have moved. */
export function installDom0Client(dom0Root: string, socket: string, node: string = process.execPath): void {
  const dir = join(dom0Root, 'usr', 'lib', 'qubes');
  mkdirSync(dir, { recursive: true });
  const script = [
    '#!/bin/sh',
    "# qrexec-client of the simulated dom0: calls into a qube through the router's dom0 seat.",
    `exec ${shQuote(node)} ${shQuote(CLIENT_MAIN)} ${shQuote(socket)} "$@"`,
    '',
  ].join('\n');
  const path = join(dir, 'qrexec-client');
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, script, { mode: 0o755 });
  renameSync(tmp, path);
}
