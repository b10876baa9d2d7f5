/**
 * The simulated qrexec router: one socket per qube under DIR/qrexec/, the
 * policy from the simulated dom0, and dispatch to qubesd, dom0 services or
 * the qube's own services.
 */
import { mkdirSync, unlinkSync } from 'node:fs';
import type { Server, Socket } from 'node:net';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { qubesdCall } from '../../shared/adminapi/client.js';
import type { Policy, PolicySyntaxError, Resolution, SystemInfo } from '../../shared/policy/index.js';
import { denyAllPolicy, loadPolicyFromRoot } from '../../shared/policy/index.js';
import { AskQueue, listenAskControl } from './asks.js';
import type { Dom0Call, RequestedTarget, ServiceStdio } from './dom0-services.js';
import { findService, runExecService, runSocketService, serviceDirs } from './dom0-services.js';
import { normaliseCall } from './normalise.js';
import type { CallHeader } from './protocol.js';
import {
  EXIT_NO_SERVICE,
  EXIT_PROBLEM,
  FRAME_REFUSED,
  FRAME_STDERR,
  FRAME_STDIN,
  FRAME_STDOUT,
  FrameParser,
  MAX_HEADER_BYTES,
  MAX_STDIN_FRAME,
  encodeExit,
  encodeFrame,
} from './protocol.js';

/** Runs a service inside a qube (its sandbox); resolves to the service's exit status. */
export interface QubeServiceHost {
  run(qube: string, service: string, argument: string, source: string, user: string, stdio: ServiceStdio): Promise<number>;
}

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
  socketFor(qube: string): string;
  /** Re-reads the qubes now and adds or removes their sockets. */
  refresh(): Promise<void>;
  close(): Promise<void>;
}

export function routerPaths(dir: string): { socketDir: string; askSocket: string } {
  return { socketDir: join(dir, 'qrexec'), askSocket: join(dir, 'qrexec-ask.sock') };
}

export const DEFAULT_ASK_TIMEOUT_MS = 60_000;

class Refused extends Error {}

const LINGER_MS = 2000;

export async function startRouter(opts: RouterOptions): Promise<Router> {
  const { socketDir, askSocket } = routerPaths(opts.dir);
  mkdirSync(socketDir, { recursive: true });
  const log = opts.log ?? (() => undefined);
  const asks = new AskQueue(opts.askTimeoutMs ?? DEFAULT_ASK_TIMEOUT_MS);
  const askServer = await listenAskControl(askSocket, asks);
  const servers = new Map<string, Server>();
  const live = new Set<Socket>();
  let closed = false;

  const socketFor = (qube: string): string => join(socketDir, `${qube}.sock`);

  const systemInfo = async (): Promise<SystemInfo> => {
    const r = await qubesdCall(opts.internalSocket, { method: 'internal.GetSystemInfo', dest: 'dom0' });
    if (!r.ok) throw new Error(`internal.GetSystemInfo failed: ${r.message}`);
    return JSON.parse(r.data.toString('utf8')) as SystemInfo;
  };

  const loadPolicy = (): Policy => {
    try {
      return loadPolicyFromRoot(opts.policyRoot);
    } catch (e) {
      if (e instanceof Error && e.name === 'PolicySyntaxError') {
        log(`qrexec: invalid policy, refusing every call: ${e.message}`);
        return denyAllPolicy(e as PolicySyntaxError);
      }
      throw e;
    }
  };

  const listenFor = (qube: string): Promise<void> =>
    new Promise((resolve) => {
      const path = socketFor(qube);
      try {
        unlinkSync(path);
      } catch {
        // nothing stale
      }
      const server = createServer({ allowHalfOpen: true }, (sock) => onConnection(qube, sock));
      servers.set(qube, server);
      server.on('error', (e) => {
        log(`qrexec: socket for ${qube}: ${e.message}`);
        resolve();
      });
      server.listen(path, () => resolve());
    });

  const stopFor = (qube: string): Promise<void> => {
    const server = servers.get(qube);
    servers.delete(qube);
    if (!server) return Promise.resolve();
    return new Promise((resolve) => server.close(() => resolve()));
  };

  let refreshing: Promise<void> | null = null;
  const refresh = (): Promise<void> => {
    if (refreshing) return refreshing;
    refreshing = (async () => {
      try {
        const info = await systemInfo();
        if (closed) return;
        const names = Object.entries(info.domains)
          .filter(([name, d]) => name !== 'dom0' && d.type !== 'AdminVM')
          .map(([name]) => name);
        const wanted = new Set(names);
        await Promise.all(names.filter((n) => !servers.has(n)).map(listenFor));
        await Promise.all([...servers.keys()].filter((n) => !wanted.has(n)).map(stopFor));
      } catch (e) {
        log(`qrexec: cannot read the qubes: ${(e as Error).message}`);
      } finally {
        refreshing = null;
      }
    })();
    return refreshing;
  };

  function onConnection(source: string, sock: Socket): void {
    live.add(sock);
    sock.on('close', () => live.delete(sock));
    sock.on('error', () => undefined);
    readHeader(sock)
      .then(({ header, rest }) => handleCall(source, sock, header, rest))
      .catch(() => finishCall(sock, encodeExit(EXIT_PROBLEM)));
  }

  async function handleCall(source: string, sock: Socket, header: CallHeader, rest: Buffer): Promise<void> {
    // the caller's stdin, held until the service runs
    const stdin = new PassThrough();
    const stopReading = readStdin(sock, rest, stdin);
    const stdout = frameWriter(sock, FRAME_STDOUT);
    const stderr = frameWriter(sock, FRAME_STDERR);
    // As qrexec when the caller's connection goes before the call is over: the
    // service's stdin ends, and a service in a qube finds its stdout and stderr shut.
    const gone = new AbortController();
    const onGone = (): void => {
      if (!stdin.writableEnded) stdin.end();
      gone.abort();
    };
    sock.once('end', onGone);
    sock.once('close', onGone);
    let last: Buffer;
    try {
      last = encodeExit(await route(source, header, { stdin, stdout, stderr }, gone.signal));
    } catch (e) {
      if (!(e instanceof Refused)) log(`qrexec: ${source} -> ${header.target} ${header.service}: ${(e as Error).message}`);
      last = encodeFrame(FRAME_REFUSED);
    } finally {
      sock.off('end', onGone);
      sock.off('close', onGone);
      stopReading();
    }
    finishCall(sock, last);
  }

  /** Sends the last frame; a caller that does not close its side is cut off shortly after. */
  function finishCall(sock: Socket, last: Buffer): void {
    if (sock.destroyed) return;
    sock.end(last);
    setTimeout(() => sock.destroy(), LINGER_MS).unref();
  }

  async function route(source: string, header: CallHeader, io: ServiceStdio, gone: AbortSignal): Promise<number> {
    const call = normaliseCall(header.target, header.service);
    const info = await systemInfo().catch(() => {
      throw new Refused();
    });
    if (!(source in info.domains)) throw new Refused();
    const req = { service: call.service, argument: call.argument, source, target: call.target };
    let res: Resolution = loadPolicy().evaluate(req, info);
    if (res.action === 'deny') {
      log(`qrexec: refused ${source} -> ${call.target} ${call.service}+${call.argument}: ${res.reason}`);
      throw new Refused();
    }
    if (res.action === 'ask') {
      const answer = await asks.add({ ...req, targets: res.targets, defaultTarget: res.defaultTarget });
      if (!answer) throw new Refused();
      res = { action: 'allow', target: answer.target, user: res.user, autostart: res.autostart, notify: res.notify, rule: res.rule };
    }
    const target = res.target;
    const requested = requestedTarget(call.target, info);
    const isDom0 = target === 'dom0' || target === '@adminvm';
    if (isDom0) {
      const d: Dom0Call = { service: call.service, argument: call.argument, source, requested };
      if (call.service.startsWith('admin.')) {
        if (opts.adminMethods && !opts.adminMethods.has(call.service)) return EXIT_NO_SERVICE;
        return runSocketService(opts.qubesdSocket, d, io);
      }
      const found = findService(serviceDirs(opts.policyRoot), call.service, call.argument);
      if (!found) return EXIT_NO_SERVICE;
      return found.kind === 'socket' ? runSocketService(found.path, d, io) : runExecService(found.path, d, io, process.env);
    }
    // dom0 services above run as the simulator's own user, as they run as the dom0 user, never root
    const user = res.user ?? 'user';
    if (target.startsWith('@dispvm')) return runInDisposable(target, call.service, call.argument, source, user, io, gone);
    const dom = info.domains[target];
    if (!dom) throw new Refused();
    if (dom.power_state === 'Halted') {
      if (!res.autostart) throw new Refused();
      const started = await qubesdCall(opts.qubesdSocket, { method: 'admin.vm.Start', dest: target });
      if (!started.ok) {
        log(`qrexec: cannot start ${target}: ${started.message}`);
        throw new Refused();
      }
    }
    // Without a host for in-qube services the qube has no such service: qrexec reports 127.
    if (!opts.qubeServices) return EXIT_NO_SERVICE;
    return runInQube(opts.qubeServices, target, call.service, call.argument, source, user, io, gone);
  }

  /** A failure of the host itself is a qrexec problem (125), not a refusal: the call was allowed. */
  async function runInQube(
    host: QubeServiceHost,
    qube: string,
    service: string,
    argument: string,
    source: string,
    user: string,
    io: ServiceStdio,
    gone: AbortSignal,
  ): Promise<number> {
    const own = { stdin: io.stdin, stdout: shutWhenGone(io.stdout, gone), stderr: shutWhenGone(io.stderr, gone) };
    try {
      return await host.run(qube, service, argument, source, user, own);
    } catch (e) {
      log(`qrexec: ${service} in ${qube} failed: ${(e as Error).message}`);
      return EXIT_PROBLEM;
    }
  }

  async function runInDisposable(
    target: string,
    service: string,
    argument: string,
    source: string,
    user: string,
    io: ServiceStdio,
    gone: AbortSignal,
  ): Promise<number> {
    // Without a host there is nothing to run the service in; qrexec would report it missing.
    if (!opts.qubeServices) return EXIT_NO_SERVICE;
    const template = target.startsWith('@dispvm:') ? target.slice('@dispvm:'.length) : null;
    const created = await qubesdCall(opts.qubesdSocket, {
      method: 'admin.vm.CreateDisposable',
      src: 'dom0',
      dest: template ?? 'dom0',
    });
    if (!created.ok) throw new Refused();
    const disp = created.data.toString('utf8');
    try {
      const started = await qubesdCall(opts.qubesdSocket, { method: 'admin.vm.Start', dest: disp });
      if (!started.ok) throw new Refused();
      return await runInQube(opts.qubeServices, disp, service, argument, source, user, io, gone);
    } finally {
      // auto_cleanup removes the disposable once it is down
      await qubesdCall(opts.qubesdSocket, { method: 'admin.vm.Kill', dest: disp }).catch(() => undefined);
    }
  }

  await refresh();
  const timer = setInterval(() => void refresh(), opts.pollMs ?? 500);
  timer.unref();

  return {
    socketDir,
    askSocket,
    socketFor,
    refresh,
    close: async () => {
      closed = true;
      clearInterval(timer);
      asks.close();
      if (refreshing) await refreshing;
      // a server closes only once its connections have: end those first
      for (const s of live) s.destroy();
      await Promise.all([...servers.keys()].map(stopFor));
      await new Promise<void>((resolve) => askServer.close(() => resolve()));
    },
  };
}

/** How qrexec passes the requested target on: a keyword for `@…`, a name for an existing qube, else `@default`. */
function requestedTarget(target: string, info: SystemInfo): RequestedTarget {
  if (target === '') return { type: 'keyword', value: 'default' };
  if (target.startsWith('@')) return { type: 'keyword', value: target.slice(1) };
  if (target in info.domains || target.startsWith('uuid:')) return { type: 'name', value: target };
  return { type: 'keyword', value: 'default' };
}

/** A Writable that wraps each chunk in a frame of `type` on the caller's socket. */
function frameWriter(sock: Socket, type: number): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      if (sock.destroyed || sock.writableEnded) return cb();
      sock.write(encodeFrame(type, chunk), () => cb());
    },
  });
}

/** Passes writes on to `to` until `gone`, then closes: the writer's side sees the close. */
function shutWhenGone(to: Writable, gone: AbortSignal): Writable {
  const w = new Writable({
    write(chunk: Buffer, _enc, cb) {
      to.write(chunk, () => cb());
    },
  });
  if (gone.aborted) w.destroy();
  else gone.addEventListener('abort', () => w.destroy(), { once: true });
  return w;
}

/**
 * Feeds the caller's stdin frames into `stdin`, ending it at the empty frame;
 * a malformed or oversized frame cuts the caller off. Returns how to stop.
 */
function readStdin(sock: Socket, rest: Buffer, stdin: PassThrough): () => void {
  const parser = new FrameParser(MAX_STDIN_FRAME);
  const onData = (chunk: Buffer): void => {
    let frames;
    try {
      frames = parser.push(chunk);
    } catch {
      sock.destroy();
      return;
    }
    for (const f of frames) {
      if (f.type !== FRAME_STDIN || stdin.writableEnded) continue;
      if (f.data.length === 0) stdin.end();
      else if (!stdin.write(f.data)) {
        sock.pause();
        stdin.once('drain', () => sock.resume());
      }
    }
  };
  sock.on('data', onData);
  if (rest.length > 0) onData(rest);
  sock.resume();
  return () => {
    sock.off('data', onData);
  };
}

/** Reads the length-prefixed request header; the bytes after it are the start of stdin. */
function readHeader(sock: Socket): Promise<{ header: CallHeader; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      buf = Buffer.concat([buf, chunk]);
      if (buf.length < 4) return;
      const len = buf.readUInt32BE(0);
      if (len > MAX_HEADER_BYTES) return fail(new Error('header too long'));
      if (buf.length < 4 + len) return;
      cleanup();
      sock.pause();
      try {
        const h = JSON.parse(buf.subarray(4, 4 + len).toString('utf8')) as Partial<CallHeader>;
        if (typeof h.target !== 'string' || typeof h.service !== 'string' || h.service === '') throw new Error('bad header');
        resolve({ header: { target: h.target, service: h.service }, rest: buf.subarray(4 + len) });
      } catch (e) {
        reject(e as Error);
      }
    };
    const onEnd = (): void => fail(new Error('closed before the header'));
    const fail = (e: Error): void => {
      cleanup();
      reject(e);
    };
    const cleanup = (): void => {
      sock.off('data', onData);
      sock.off('end', onEnd);
    };
    sock.on('data', onData);
    sock.on('end', onEnd);
  });
}
