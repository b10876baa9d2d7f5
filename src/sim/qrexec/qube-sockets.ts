/**
 * One listening socket per qube under DIR/qrexec/: a call's source is the
 * socket it arrives on. The set of qubes is read again every poll, so
 * sockets come and go with the qubes.
 */
import { unlinkSync } from 'node:fs';
import type { Server, Socket } from 'node:net';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { socketPathProblem } from '../../shared/socket-path.js';

export interface QubeSocketsOptions {
  readonly socketDir: string;
  /** The qubes that should have a socket now; a rejection leaves the sockets as they are. */
  readonly qubes: () => Promise<string[]>;
  /** Takes each connection made to `qube`'s socket. */
  readonly onConnection: (qube: string, sock: Socket) => void;
  readonly pollMs: number;
  readonly log: (line: string) => void;
}

export class QubeSockets {
  private readonly servers = new Map<string, Server>();
  /** Each server's opening, until it listens or fails. */
  private readonly opening = new WeakMap<Server, Promise<void>>();
  private readonly live = new Set<Socket>();
  /** Qubes whose socket path is too long to bind. */
  private readonly unbindable = new Set<string>();
  private refreshing: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(private readonly o: QubeSocketsOptions) {}

  socketFor(qube: string): string {
    return join(this.o.socketDir, `${qube}.sock`);
  }

  /** Opens the sockets of the qubes there are now, then keeps them in step every poll. */
  async start(): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.o.pollMs);
    this.timer.unref();
  }

  /** Re-reads the qubes now and adds or removes their sockets; a refresh under way is joined. */
  refresh(): Promise<void> {
    if (this.refreshing) return this.refreshing;
    this.refreshing = (async () => {
      try {
        const names = await this.o.qubes();
        if (this.closed) return;
        const wanted = new Set(names);
        await Promise.all(names.filter((n) => !this.servers.has(n)).map((n) => this.listenFor(n)));
        await Promise.all([...this.servers.keys()].filter((n) => !wanted.has(n)).map((n) => this.stopFor(n)));
      } catch (e) {
        this.o.log(`qrexec: cannot read the qubes: ${(e as Error).message}`);
      } finally {
        this.refreshing = null;
      }
    })();
    return this.refreshing;
  }

  /**
   * Opens QUBE's socket now if it has none, as a qube's qrexec channel is
   * there from its start: a qube made since the last poll is not left
   * without one. A refresh under way read the qubes before QUBE may have
   * existed (it would close the socket again), so it is let finish first.
   */
  async ensure(qube: string): Promise<void> {
    if (this.refreshing) await this.refreshing;
    if (this.closed || this.servers.has(qube)) return;
    await this.listenFor(qube);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    if (this.refreshing) await this.refreshing;
    // a server closes only once its connections have: end those first
    for (const s of this.live) s.destroy();
    await Promise.all([...this.servers.keys()].map((n) => this.stopFor(n)));
  }

  private listenFor(qube: string): Promise<void> {
    let server: Server | undefined;
    const opened = new Promise<void>((resolve) => {
      const path = this.socketFor(qube);
      const problem = socketPathProblem(path);
      if (problem !== null) {
        // said once, not every poll
        if (!this.unbindable.has(qube)) this.o.log(`qrexec: socket for ${qube}: ${problem}`);
        this.unbindable.add(qube);
        resolve();
        return;
      }
      try {
        unlinkSync(path);
      } catch {
        // nothing stale
      }
      server = createServer({ allowHalfOpen: true }, (sock) => {
        this.live.add(sock);
        sock.on('close', () => this.live.delete(sock));
        this.o.onConnection(qube, sock);
      });
      this.servers.set(qube, server);
      server.on('error', (e) => {
        this.o.log(`qrexec: socket for ${qube}: ${e.message}`);
        resolve();
      });
      server.listen(path, () => resolve());
    });
    if (server !== undefined) this.opening.set(server, opened);
    return opened;
  }

  private stopFor(qube: string): Promise<void> {
    const server = this.servers.get(qube);
    this.servers.delete(qube);
    if (!server) return Promise.resolve();
    // a socket still being opened is closed once open: a close before then would leave its opener waiting forever
    return (this.opening.get(server) ?? Promise.resolve()).then(() => new Promise((resolve) => server.close(() => resolve())));
  }
}
