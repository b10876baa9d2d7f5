/**
 * The simulated qrexec router: one socket per qube under DIR/qrexec/, the
 * policy from the simulated dom0, and dispatch to qubesd, dom0 services or
 * the qube's own services.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { AskQueue, listenAskControl } from './asks.js';
import type { QubeServiceHost } from './call-handler.js';
import { CallHandler } from './call-handler.js';
import { listenDom0Seat } from './dom0-seat.js';
import { PolicyManager } from './policy-manager.js';
import { QubeSockets } from './qube-sockets.js';

export type { QubeServiceHost } from './call-handler.js';

export interface RouterOptions {
  /** The host directory: sockets go to DIR/qrexec/<qube>.sock, the ask control socket to DIR/qrexec-ask.sock. */
  dir: string;
  qubesdSocket: string;
  internalSocket: string;
  /** The simulated dom0's root (DIR/dom0): policy and dom0 services live under it. */
  policyRoot: string;
  /** How long an `ask` waits for the operator before it counts as a refusal. */
  askTimeoutMs?: number;
  qubeServices?: QubeServiceHost;
  /** The admin.* methods qubesd serves; others are missing services, as in dom0 without their symlink. All when absent. */
  adminMethods?: ReadonlySet<string>;
  /** How often the set of qubes is re-read to add and remove sockets. */
  pollMs?: number;
  log?: (line: string) => void;
}

export interface Router {
  readonly socketDir: string;
  readonly askSocket: string;
  /** dom0's seat, for `qrexec-client -d` (no policy asked). */
  readonly dom0Socket: string;
  socketFor(qube: string): string;
  /** Re-reads the qubes now and adds or removes their sockets. */
  refresh(): Promise<void>;
  /** Opens a qube's socket now if it has none (a qube made since the last poll, about to run). */
  ensureSocket(qube: string): Promise<void>;
  close(): Promise<void>;
}

export function routerPaths(dir: string): { socketDir: string; askSocket: string; dom0Socket: string } {
  return { socketDir: join(dir, 'qrexec'), askSocket: join(dir, 'qrexec-ask.sock'), dom0Socket: join(dir, 'qrexec-dom0.sock') };
}

/**
 * Qubes' dialog waits for the operator as long as it takes; the simulator
 * refuses after four minutes, under the principal's own call timeout, so an
 * unanswered call ends as the refusal rather than as a failed call.
 */
export const DEFAULT_ASK_TIMEOUT_MS = 240_000;

export async function startRouter(opts: RouterOptions): Promise<Router> {
  const { socketDir, askSocket, dom0Socket } = routerPaths(opts.dir);
  mkdirSync(socketDir, { recursive: true });
  const log = opts.log ?? (() => undefined);
  const asks = new AskQueue(opts.askTimeoutMs ?? DEFAULT_ASK_TIMEOUT_MS);
  const askServer = await listenAskControl(askSocket, asks);
  const policy = new PolicyManager({ policyRoot: opts.policyRoot, internalSocket: opts.internalSocket, asks, log });
  const handler = new CallHandler({
    policy,
    qubesdSocket: opts.qubesdSocket,
    policyRoot: opts.policyRoot,
    ...(opts.adminMethods ? { adminMethods: opts.adminMethods } : {}),
    ...(opts.qubeServices ? { qubeServices: opts.qubeServices } : {}),
    log,
  });
  const sockets = new QubeSockets({
    socketDir,
    // every qube but dom0 calls through a socket of its own
    qubes: async () =>
      Object.entries((await policy.systemInfo()).domains)
        .filter(([name, d]) => name !== 'dom0' && d.type !== 'AdminVM')
        .map(([name]) => name),
    onConnection: (qube, sock) => handler.serve(qube, sock),
    pollMs: opts.pollMs ?? 500,
    log,
  });
  await sockets.start();
  const dom0Seat = await listenDom0Seat(dom0Socket, (sock) => handler.serveFromDom0(sock));

  return {
    socketDir,
    askSocket,
    dom0Socket,
    socketFor: (qube) => sockets.socketFor(qube),
    refresh: () => sockets.refresh(),
    ensureSocket: (qube) => sockets.ensure(qube),
    close: async () => {
      asks.close();
      await sockets.close();
      await dom0Seat.close();
      await handler.close();
      await new Promise<void>((resolve) => askServer.close(() => resolve()));
    },
  };
}
