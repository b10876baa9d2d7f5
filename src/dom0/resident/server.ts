/**
 * The resident front end: one process serves every qmcp dom0 service call
 * that qrexec makes over its socket. Each connection is one call, bounded on
 * its own (the descriptor's bytes and time, the payload as the runner
 * bounds it, a reply the caller stops reading), and ended on its own: a
 * failure or an exception in one call ends that call with the refusal and a
 * journal line, never another call or the process.
 */
import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { PassThrough, Writable } from 'node:stream';
import { REFUSAL_REPLY, statusTrailer } from '../../shared/service-reply.js';
import { checkSocketPath } from '../../shared/socket-path.js';
import type { Dom0CallIo } from '../service/compose.js';
import { REFUSAL_EXIT_STATUS } from '../service/refusal.js';
import { MAX_DESCRIPTOR_BYTES, descriptorEnv } from './descriptor.js';

export interface ResidentLimits {
  /** Calls served at once; one more is refused without any per-call work. */
  readonly maxCalls: number;
  /** How long qrexec may take to write the descriptor. */
  readonly descriptorMs: number;
  /** How long a reply may sit unread before the call is ended. */
  readonly stallMs: number;
}

/**
 * qrexec connects to the socket before it waits (up to 5 s) for the
 * caller's data channel, and writes the descriptor only after that, as the
 * start of the caller's stream (qubes-core-qrexec daemon/qrexec-daemon-common.c
 * run_qrexec_to_dom0, libqrexec/exec.c find_qrexec_service): the descriptor's
 * bound leaves room for that wait.
 */
export const DEFAULT_LIMITS: ResidentLimits = { maxCalls: 64, descriptorMs: 15_000, stallMs: 30_000 };

export interface ResidentOptions {
  /** Serves one call (service/compose.ts serveDom0Call); resolves to the status the caller is told. */
  readonly serve: (call: Dom0CallIo) => Promise<number>;
  /** The operator's channel. */
  readonly log: (message: string) => void;
  readonly limits?: Partial<ResidentLimits>;
}

export interface Resident {
  /** Listens on one more socket: a path it binds, or a descriptor systemd passed. */
  listen(at: { path: string } | { fd: number }): Promise<Server>;
  /** Calls being served now. */
  readonly active: () => number;
  /** Stops accepting, withdraws the calls waiting for the operator, and resolves once every call has ended. */
  stop(): Promise<void>;
}

/** Reads up to the descriptor's NUL; resolves to the descriptor and what followed it, or null. */
function readDescriptor(sock: Socket, deadlineMs: number): Promise<{ descriptor: Buffer; rest: Buffer } | null> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const finish = (value: { descriptor: Buffer; rest: Buffer } | null): void => {
      clearTimeout(timer);
      sock.off('data', onData);
      sock.off('end', onEnd);
      sock.off('close', onEnd);
      sock.pause();
      resolve(value);
    };
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      size += chunk.length;
      const all = Buffer.concat(chunks, size);
      const nul = all.indexOf(0);
      if (nul >= 0 && nul <= MAX_DESCRIPTOR_BYTES) finish({ descriptor: all.subarray(0, nul), rest: all.subarray(nul + 1) });
      else if (nul >= 0 || size > MAX_DESCRIPTOR_BYTES) finish(null);
    };
    const onEnd = (): void => finish(null);
    const timer = setTimeout(() => finish(null), deadlineMs);
    sock.on('data', onData);
    sock.on('end', onEnd);
    sock.on('close', onEnd);
  });
}

/** The caller's stdin after the descriptor; once the runner stops reading (it is destroyed), the rest is dropped. */
function callerStdin(sock: Socket, rest: Buffer): PassThrough {
  const stdin = new PassThrough();
  stdin.on('error', () => undefined);
  if (rest.length > 0) stdin.write(rest);
  sock.on('data', (chunk: Buffer) => {
    if (!stdin.destroyed && !stdin.writableEnded) stdin.write(chunk);
  });
  const end = (): void => {
    if (!stdin.destroyed && !stdin.writableEnded) stdin.end();
  };
  sock.once('end', end);
  sock.once('close', end);
  sock.resume();
  return stdin;
}

/** A reply the caller leaves unread for `stallMs` ends the call: its pending writes fail, so the call finishes. */
function watchStall(sock: Socket, stallMs: number): () => void {
  let written = sock.bytesWritten;
  let since = Date.now();
  const timer = setInterval(
    () => {
      if (sock.writableLength === 0 || sock.bytesWritten !== written) {
        written = sock.bytesWritten;
        since = Date.now();
      } else if (Date.now() - since >= stallMs) {
        sock.destroy();
      }
    },
    Math.max(10, Math.floor(stallMs / 4)),
  );
  timer.unref();
  return () => clearInterval(timer);
}

const discard = (): Writable => new Writable({ write: (_c, _e, done) => done() });

export function startResident(opts: ResidentOptions): Resident {
  const limits: ResidentLimits = { ...DEFAULT_LIMITS, ...opts.limits };
  const { log } = opts;
  const calls = new Set<Promise<void>>();
  const withdrawals = new Set<() => void>();
  let stopping = false;

  const open = new Set<Socket>();
  /**
   * Ends a call: its trailer (for a refusal, whatever its reason, the one
   * refusal reply), then what the caller still sends is read and dropped
   * until it closes; a caller that holds the connection open past `stallMs`
   * after its reply is cut off.
   */
  const end = (sock: Socket, status: number): void => {
    sock.resume();
    if (sock.destroyed || sock.writableEnded) return;
    sock.end(status === REFUSAL_EXIT_STATUS ? REFUSAL_REPLY : statusTrailer(status), () => {
      const timer = setTimeout(() => sock.destroy(), limits.stallMs);
      timer.unref();
      // a caller that closes frees the call at once: the timer must not hold it for stallMs
      sock.once('close', () => clearTimeout(timer));
    });
  };

  async function serveOne(sock: Socket): Promise<void> {
    const read = await readDescriptor(sock, limits.descriptorMs);
    const env = read ? descriptorEnv(read.descriptor) : null;
    if (!read || !env) {
      log('resident: refused a connection without a well-formed service descriptor');
      end(sock, REFUSAL_EXIT_STATUS);
      return;
    }
    const stdin = callerStdin(sock, read.rest);
    const unwatch = watchStall(sock, limits.stallMs);
    let status = REFUSAL_EXIT_STATUS;
    try {
      status = await opts.serve({
        env,
        stdin,
        io: { stdout: sock, stderr: discard() },
        onStop: (withdraw) => {
          if (stopping) queueMicrotask(withdraw);
          withdrawals.add(withdraw);
          return () => withdrawals.delete(withdraw);
        },
      });
    } catch (err) {
      // this call ends with the refusal; every other call, and the process, go on
      log(`resident: ${env['QREXEC_SERVICE_FULL_NAME']} from ${env['QREXEC_REMOTE_DOMAIN']} failed: ${(err as Error)?.stack ?? String(err)}`);
      status = REFUSAL_EXIT_STATUS;
    } finally {
      unwatch();
      stdin.destroy();
    }
    end(sock, status);
  }

  const servers: Server[] = [];
  const accept = (sock: Socket): void => {
    // a caller gone makes writes fail (EPIPE): the gate withdraws on it, nothing else needs to know
    sock.on('error', () => undefined);
    open.add(sock);
    sock.once('close', () => open.delete(sock));
    if (stopping || calls.size >= limits.maxCalls) {
      log(`resident: refused a call: ${stopping ? 'stopping' : `${limits.maxCalls} calls already being served`}`);
      end(sock, REFUSAL_EXIT_STATUS);
      return;
    }
    sock.resume();
    const call = serveOne(sock).catch((err: unknown) => {
      log(`resident: a call failed outside its guards: ${String(err)}`);
      sock.destroy();
    });
    calls.add(call);
    void call.finally(() => calls.delete(call));
  };

  return {
    listen(at) {
      if ('path' in at) checkSocketPath(at.path);
      const server = createServer({ allowHalfOpen: true, pauseOnConnect: true }, accept);
      server.on('error', (err) => log(`resident: listening socket: ${err.message}`));
      servers.push(server);
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(at, () => {
          server.off('error', reject);
          resolve(server);
        });
      });
    },
    active: () => calls.size,
    async stop() {
      stopping = true;
      // closing waits for the connections, so the waiting calls are withdrawn first
      const closed = servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve())));
      for (const withdraw of withdrawals) withdraw();
      while (calls.size > 0) await Promise.allSettled([...calls]);
      // every call has ended; a connection its caller still holds is closed once its reply is out
      for (const sock of open) {
        if (sock.writableFinished || sock.destroyed) sock.destroy();
        else sock.once('finish', () => sock.destroy());
      }
      await Promise.all(closed);
    },
  };
}
