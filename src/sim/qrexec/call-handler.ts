/**
 * One call on a qube's socket: read it, ask the policy, then run the dom0
 * service, forward it to qubesd, or run the service in the target qube (or
 * a new disposable), and answer with its output and exit status.
 */
import type { ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import { PassThrough } from 'node:stream';
import { qubesdCall } from '../../shared/adminapi/client.js';
import type { SystemInfo } from '../../shared/policy/index.js';
import { finishCall, frameWriter, readHeader, readStdin, shutWhenGone } from './call-frames.js';
import type { Dom0Call, RequestedTarget, ServiceStdio } from './dom0-services.js';
import { findService, runExecService, runSocketService, serviceDirs } from './dom0-services.js';
import { normaliseCall } from './normalise.js';
import type { PolicyManager } from './policy-manager.js';
import type { CallHeader } from './protocol.js';
import { EXIT_NO_SERVICE, EXIT_PROBLEM, FRAME_REFUSED, FRAME_STDERR, FRAME_STDOUT, encodeExit, encodeFrame } from './protocol.js';
import { QmcpError } from '../../shared/errors.js';

/** Runs a service inside a qube (its sandbox); resolves to the service's exit status. */
export interface QubeServiceHost {
  run(qube: string, service: string, argument: string, source: string, user: string, stdio: ServiceStdio): Promise<number>;
}

export interface CallHandlerOptions {
  readonly policy: PolicyManager;
  readonly qubesdSocket: string;
  /** The simulated dom0's root: its dom0 services live under it. */
  readonly policyRoot: string;
  /** The admin.* methods qubesd serves; others are missing services. All when absent. */
  readonly adminMethods?: ReadonlySet<string>;
  readonly qubeServices?: QubeServiceHost;
  readonly log: (line: string) => void;
}

/** A call to run in a qube: what it asks for, for whom, as which user, and its caller's stdio. */
interface QubeCall {
  readonly service: string;
  readonly argument: string;
  readonly source: string;
  readonly user: string;
  readonly io: ServiceStdio;
  /** Aborted when the caller's connection goes. */
  readonly gone: AbortSignal;
}

/** How one call is answered: its exit status. */
type Route = (header: CallHeader, io: ServiceStdio, gone: AbortSignal) => Promise<number>;

/** The caller sees a refusal; the reason is logged where it is known. */
class RouterDenial extends QmcpError {
  readonly code = 'ERR_QMCP_ROUTER_DENIED';
}

export class CallHandler {
  /** The dom0 service processes still running. */
  private readonly running = new Set<ChildProcess>();

  constructor(private readonly o: CallHandlerOptions) {}

  /** Ends the dom0 services still running, as a shutdown of dom0 would, once they have exited: nothing writes under dom0 after. */
  async close(): Promise<void> {
    const exits = [...this.running].map((child) => new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve();
      else child.once('close', () => resolve());
    }));
    for (const child of this.running) child.kill('SIGTERM');
    await Promise.all(exits);
  }

  /** Serves the one call made on a connection to `source`'s socket. */
  serve(source: string, sock: Socket): void {
    this.serveWith(sock, source, (header, io, gone) => this.route(source, header, io, gone));
  }

  /**
   * Serves one call made from dom0 into a qube, as `qrexec-client -d` makes
   * it: no policy is asked (dom0 decides what it runs), and a qube that is
   * not running is not started.
   */
  serveFromDom0(sock: Socket): void {
    this.serveWith(sock, 'dom0', (header, io, gone) => this.fromDom0(header, io, gone));
  }

  private serveWith(sock: Socket, source: string, route: Route): void {
    sock.on('error', () => undefined);
    readHeader(sock)
      .then(({ header, rest }) => this.answer(source, sock, header, rest, route))
      .catch(() => finishCall(sock, encodeExit(EXIT_PROBLEM)));
  }

  private async fromDom0(header: CallHeader, io: ServiceStdio, gone: AbortSignal): Promise<number> {
    const call = normaliseCall(header.target, header.service);
    const dom = (await this.o.policy.systemInfo()).domains[call.target];
    if (!dom || dom.type === 'AdminVM' || dom.power_state !== 'Running') {
      io.stderr.write(`qrexec-client: ${call.target} is not a running qube\n`);
      return EXIT_PROBLEM;
    }
    if (!this.o.qubeServices) return EXIT_NO_SERVICE;
    return this.runInQube(this.o.qubeServices, call.target, { service: call.service, argument: call.argument, source: 'dom0', user: 'root', io, gone });
  }

  private async answer(source: string, sock: Socket, header: CallHeader, rest: Buffer, route: Route): Promise<void> {
    // the caller's stdin, held until the service runs
    const stdin = new PassThrough();
    const stopReading = readStdin(sock, rest, stdin);
    const stdout = frameWriter(sock, FRAME_STDOUT);
    const stderr = frameWriter(sock, FRAME_STDERR);
    // As qrexec when the caller's connection goes before the call is over: the
    // service's stdin ends, and its stdout and stderr are shut (its next write fails).
    const gone = new AbortController();
    const onGone = (): void => {
      if (!stdin.writableEnded) stdin.end();
      gone.abort();
    };
    sock.once('end', onGone);
    sock.once('close', onGone);
    let last: Buffer;
    try {
      last = encodeExit(await route(header, { stdin, stdout, stderr }, gone.signal));
    } catch (e) {
      if (!(e instanceof RouterDenial)) this.o.log(`qrexec: ${source} -> ${header.target} ${header.service}: ${(e as Error).message}`);
      last = encodeFrame(FRAME_REFUSED);
    } finally {
      sock.off('end', onGone);
      sock.off('close', onGone);
      stopReading();
    }
    finishCall(sock, last);
  }

  private async route(source: string, header: CallHeader, io: ServiceStdio, gone: AbortSignal): Promise<number> {
    const call = normaliseCall(header.target, header.service);
    const info = await this.o.policy.systemInfo().catch(() => {
      throw new RouterDenial();
    });
    if (!(source in info.domains)) throw new RouterDenial();
    const res = await this.o.policy.decide({ service: call.service, argument: call.argument, source, target: call.target }, info);
    if (!res) throw new RouterDenial();
    const target = res.target;
    if (target === 'dom0' || target === '@adminvm') {
      return this.runInDom0({ service: call.service, argument: call.argument, source, requested: requestedTarget(call.target, info) }, io, gone);
    }
    // dom0 services above run as the simulator's own user, as they run as the dom0 user, never root
    const user = res.user ?? 'user';
    const inQube: QubeCall = { service: call.service, argument: call.argument, source, user, io, gone };
    if (target.startsWith('@dispvm')) return this.runInDisposable(target, inQube);
    const dom = info.domains[target];
    if (!dom) throw new RouterDenial();
    if (dom.power_state === 'Halted') {
      if (!res.autostart) throw new RouterDenial();
      const started = await qubesdCall(this.o.qubesdSocket, { method: 'admin.vm.Start', dest: target });
      if (!started.ok) {
        this.o.log(`qrexec: cannot start ${target}: ${started.message}`);
        throw new RouterDenial();
      }
    }
    // Without a host for in-qube services the qube has no such service: qrexec reports 127.
    if (!this.o.qubeServices) return EXIT_NO_SERVICE;
    return this.runInQube(this.o.qubeServices, target, inQube);
  }

  /** admin.* goes to qubesd; anything else to the dom0 service installed for it, if any. */
  private async runInDom0(d: Dom0Call, io: ServiceStdio, gone: AbortSignal): Promise<number> {
    if (d.service.startsWith('admin.')) {
      if (this.o.adminMethods && !this.o.adminMethods.has(d.service)) return EXIT_NO_SERVICE;
      return runSocketService(this.o.qubesdSocket, d, io);
    }
    const found = findService(serviceDirs(this.o.policyRoot), d.service, d.argument);
    if (!found) return EXIT_NO_SERVICE;
    return found.kind === 'socket' ? runSocketService(found.path, d, io, gone) : runExecService(found.path, d, io, process.env, this.running, gone);
  }

  /** A failure of the host itself is a qrexec problem (125), not a refusal: the call was allowed. */
  private async runInQube(host: QubeServiceHost, qube: string, c: QubeCall): Promise<number> {
    const own = { stdin: c.io.stdin, stdout: shutWhenGone(c.io.stdout, c.gone), stderr: shutWhenGone(c.io.stderr, c.gone) };
    try {
      return await host.run(qube, c.service, c.argument, c.source, c.user, own);
    } catch (e) {
      this.o.log(`qrexec: ${c.service} in ${qube} failed: ${(e as Error).message}`);
      return EXIT_PROBLEM;
    }
  }

  private async runInDisposable(target: string, c: QubeCall): Promise<number> {
    // Without a host there is nothing to run the service in; qrexec would report it missing.
    if (!this.o.qubeServices) return EXIT_NO_SERVICE;
    const template = target.startsWith('@dispvm:') ? target.slice('@dispvm:'.length) : null;
    const created = await qubesdCall(this.o.qubesdSocket, {
      method: 'admin.vm.CreateDisposable',
      src: 'dom0',
      dest: template ?? 'dom0',
    });
    if (!created.ok) throw new RouterDenial();
    const disp = created.data.toString('utf8');
    try {
      const started = await qubesdCall(this.o.qubesdSocket, { method: 'admin.vm.Start', dest: disp });
      if (!started.ok) throw new RouterDenial();
      return await this.runInQube(this.o.qubeServices, disp, c);
    } finally {
      // auto_cleanup removes the disposable once it is down
      await qubesdCall(this.o.qubesdSocket, { method: 'admin.vm.Kill', dest: disp }).catch(() => undefined);
    }
  }
}

/** How qrexec passes the requested target on: a keyword for `@…`, a name for an existing qube, else `@default`. */
function requestedTarget(target: string, info: SystemInfo): RequestedTarget {
  if (target === '') return { type: 'keyword', value: 'default' };
  if (target.startsWith('@')) return { type: 'keyword', value: target.slice(1) };
  if (target in info.domains || target.startsWith('uuid:')) return { type: 'name', value: target };
  return { type: 'keyword', value: 'default' };
}
