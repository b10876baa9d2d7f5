/**
 * qubesd's socket server: framing, VM decoding, method flags, replies.
 * Malformed input never throws out of here; each connection is independent.
 */
import type { Server, Socket } from 'node:net';
import { createServer } from 'node:net';
import { unlinkSync } from 'node:fs';
import { qubeNameProblem } from '../../shared/names.js';
import type { AdminRequest } from '../../shared/adminapi/wire.js';
import { encodeEvent, encodeException, encodeOk, isAscii, MAX_REQUEST_BYTES, parseRequest } from '../../shared/adminapi/wire.js';
import type { Policy } from '../../shared/policy/index.js';
import { denyAllPolicy, PolicySyntaxError } from '../../shared/policy/index.js';
import { PolicyReloader } from '../../shared/policy/reload.js';
import { checkSocketPath } from '../../shared/socket-path.js';
import type { SimApp } from './app.js';
import { err, QubesError } from './errors.js';
import type { CallContext, MethodTable } from './methods/types.js';
import type { VmState } from './state.js';

/** A streaming client that stops reading is dropped past this much unsent data. */
const MAX_PENDING_EVENT_BYTES = 8 * 1024 * 1024;
const UUID_RE = /^uuid:[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]*$/;

export interface ApiServerOptions {
  readonly app: SimApp;
  readonly methods: MethodTable;
  /** The simulated dom0 root whose policy filters non-dom0 callers; null denies them everything. */
  readonly policyRoot: string | null;
}

/**
 * The qube a request names, or the Qubes exception its name raises. The
 * exception is returned, not thrown: a name that exists nowhere then costs
 * what one that exists does (a throw takes microseconds more).
 */
function decodeVm(app: SimApp, raw: Buffer): VmState | QubesError {
  if (!isAscii(raw)) throw new Error('UnicodeDecodeError');
  const s = raw.toString('latin1');
  if (s.startsWith('uuid:')) {
    if (raw.length !== 41 || !UUID_RE.test(s)) return err.invalidUuid(s.slice(5));
    return app.byUuid(s.slice(5)) ?? err.vmNotFound(s);
  }
  const problem = qubeNameProblem(s);
  if (problem) return err.value(problem);
  return app.get(s) ?? err.vmNotFound(s);
}

function replyException(sock: Socket, e: QubesError): void {
  if (!sock.destroyed) sock.end(encodeException(e.className, e.message));
}

/** What a connection is served with: the options, and the policy as its files read now. */
interface Served extends ApiServerOptions {
  readonly policyFiles: PolicyReloader | null;
}

function loadPolicy(opts: Served): Policy {
  if (opts.policyFiles === null) return denyAllPolicy(new PolicySyntaxError('(none)', 0, 'no policy configured'));
  try {
    return opts.policyFiles.load();
  } catch (e) {
    if (e instanceof PolicySyntaxError) return denyAllPolicy(e);
    return denyAllPolicy(new PolicySyntaxError(opts.policyRoot ?? '(none)', 0, (e as Error).message));
  }
}

async function respond(opts: Served, sock: Socket, req: AdminRequest, closed: Promise<void>): Promise<void> {
  const { app, methods } = opts;
  try {
    const src = decodeVm(app, req.src);
    if (src instanceof QubesError) return replyException(sock, src);
    const dest = decodeVm(app, req.dest);
    if (dest instanceof QubesError) return replyException(sock, dest);
    const def = Object.prototype.hasOwnProperty.call(methods, req.method) ? methods[req.method] : undefined;
    if (!def) throw err.protocol(`no such method: '${req.method}'`);
    if (def.wantsPayload === true && req.payload.length === 0) throw err.protocol('expected payload');
    if (def.wantsPayload === false && req.payload.length !== 0) throw err.protocol('unexpected payload');
    if (def.wantsArg === true && !req.arg) throw err.protocol('expected an argument');
    if (def.wantsArg === false && req.arg) throw err.protocol('unexpected argument');
    if (def.destAdminvm === true && dest.klass !== 'AdminVM') throw err.protocol('expected destination to be AdminVM');
    if (def.destAdminvm === false && dest.klass === 'AdminVM') throw err.protocol('expected destination to not be AdminVM');
    let policy: Policy | null | undefined;
    const ctx: CallContext = {
      app,
      method: req.method,
      src,
      dest,
      arg: req.arg,
      payload: req.payload,
      policy: () => {
        if (src.klass === 'AdminVM') return null;
        policy ??= loadPolicy(opts);
        return policy;
      },
      sendEvent: (ev) => {
        if (sock.destroyed) return;
        sock.write(encodeEvent(ev));
        if (sock.writableLength > MAX_PENDING_EVENT_BYTES) sock.destroy();
      },
      closed,
    };
    const result = await def.handler(ctx);
    if (sock.destroyed) return;
    if (def.streaming) {
      sock.end();
      return;
    }
    sock.end(encodeOk(result ?? null));
  } catch (e) {
    if (e instanceof QubesError) return replyException(sock, e);
    if (sock.destroyed) return;
    // any other failure is what qubesd does with a non-Qubes exception: close, no bytes
    sock.destroy();
  }
}

function handleConnection(opts: Served, sock: Socket): void {
  const chunks: Buffer[] = [];
  let size = 0;
  let done = false;
  const closed = new Promise<void>((resolve) => sock.once('close', () => resolve()));
  sock.on('error', () => sock.destroy());
  sock.on('data', (chunk: Buffer) => {
    if (done) return;
    size += chunk.length;
    if (size > MAX_REQUEST_BYTES) {
      done = true;
      sock.destroy();
      return;
    }
    chunks.push(chunk);
  });
  sock.on('end', () => {
    if (done) return;
    done = true;
    let req: AdminRequest;
    try {
      req = parseRequest(Buffer.concat(chunks));
    } catch {
      sock.destroy();
      return;
    }
    void respond(opts, sock, req, closed);
  });
}

export interface ApiServer {
  readonly server: Server;
  /** Stops listening, drops open connections and removes the socket file. */
  close(): Promise<void>;
}

/** Listens on `path` (replacing a stale socket file) and resolves once ready. */
export async function listenApi(path: string, opts: ApiServerOptions): Promise<ApiServer> {
  checkSocketPath(path);
  const open = new Set<Socket>();
  const served: Served = { ...opts, policyFiles: opts.policyRoot === null ? null : new PolicyReloader(opts.policyRoot) };
  try {
    unlinkSync(path);
  } catch {
    // no stale socket
  }
  const server = createServer({ allowHalfOpen: true }, (sock) => {
    open.add(sock);
    sock.once('close', () => open.delete(sock));
    handleConnection(served, sock);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    // asyncio's create_unix_server listens with a backlog of 100, as qubesd does
    server.listen({ path, backlog: 100 }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    server,
    close: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const sock of open) sock.destroy();
      });
      try {
        unlinkSync(path);
      } catch {
        // already gone
      }
    },
  };
}
