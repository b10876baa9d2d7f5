/** Running a call whose resolved target is dom0: qubesd for admin.*, else an executable or socket service. */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { statSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { EXIT_NO_SERVICE, EXIT_PROBLEM } from './protocol.js';

/** How the caller named the target, as qrexec passes it on: `name X` or `keyword K`. */
export interface RequestedTarget {
  type: 'name' | 'keyword';
  value: string;
}

export interface ServiceStdio {
  stdin: Readable;
  stdout: Writable;
  stderr: Writable;
}

export interface Dom0Call {
  service: string;
  argument: string;
  source: string;
  requested: RequestedTarget;
}

/** qrexec's search path in dom0, in its order, under the simulated dom0 root. */
export function serviceDirs(dom0Root: string): string[] {
  return ['run/qubes-rpc', 'usr/local/etc/qubes-rpc', 'etc/qubes-rpc'].map((d) => join(dom0Root, d));
}

export type FoundService = { kind: 'exec' | 'socket'; path: string };

/** `SERVICE+ARG` across every directory first, then `SERVICE`, as libqrexec looks them up. */
export function findService(dirs: string[], service: string, argument: string): FoundService | null {
  for (const name of [`${service}+${argument}`, service]) {
    for (const dir of dirs) {
      const path = join(dir, name);
      try {
        const st = statSync(path);
        if (st.isSocket()) return { kind: 'socket', path };
        if (st.isFile()) return { kind: 'exec', path };
      } catch {
        // not in this directory
      }
    }
  }
  return null;
}

/** The command line qrexec hands a socket service: `SERVICE+ARG SRC TYPE TARGET`. */
export function socketServiceHeader(call: Dom0Call): Buffer {
  const { service, argument, source, requested } = call;
  return Buffer.from(`${service}+${argument} ${source} ${requested.type} ${requested.value}\0`, 'latin1');
}

/** The service's environment: inherited QREXEC* dropped (but the two qrexec keeps), then qrexec's own. */
export function serviceEnv(base: NodeJS.ProcessEnv, call: Dom0Call): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(base)) {
    if (k.startsWith('QREXEC') && k !== 'QREXEC_SERVICE_PATH' && k !== 'QREXEC_AGENT_PID') continue;
    env[k] = v;
  }
  env.QREXEC_REQUESTED_TARGET_TYPE = call.requested.type;
  if (call.requested.type === 'name') env.QREXEC_REQUESTED_TARGET = call.requested.value;
  else env.QREXEC_REQUESTED_TARGET_KEYWORD = call.requested.value;
  env.QREXEC_SERVICE_FULL_NAME = `${call.service}+${call.argument}`;
  env.QREXEC_REMOTE_DOMAIN = call.source;
  env.QREXEC_SERVICE_ARGUMENT = call.argument;
  return env;
}

/**
 * Spawns an executable service. Its stderr reaches the caller, as
 * qrexec-client-vm shows a remote service's stderr. Once the caller is
 * `gone`, its stdout and stderr are shut, so its next write fails (EPIPE).
 * Resolves to its status.
 */
export function runExecService(
  path: string,
  call: Dom0Call,
  io: ServiceStdio,
  baseEnv: NodeJS.ProcessEnv,
  running?: Set<ChildProcess>,
  gone?: AbortSignal,
): Promise<number> {
  return new Promise((resolve) => {
    const argv = call.argument === '' ? [] : [call.argument];
    const child = spawn(path, argv, { env: serviceEnv(baseEnv, call), stdio: ['pipe', 'pipe', 'pipe'] });
    running?.add(child);
    child.once('close', () => running?.delete(child));
    let failed = false;
    child.on('error', () => {
      failed = true;
      io.stdin.unpipe(child.stdin);
      resolve(EXIT_NO_SERVICE);
    });
    child.stdin.on('error', () => undefined);
    io.stdin.pipe(child.stdin);
    child.stdout.pipe(io.stdout, { end: false });
    child.stderr.pipe(io.stderr, { end: false });
    const shut = (): void => {
      child.stdout.destroy();
      child.stderr.destroy();
    };
    if (gone?.aborted) shut();
    else gone?.addEventListener('abort', shut, { once: true });
    child.on('close', (code, signal) => {
      io.stdin.unpipe(child.stdin);
      if (failed) return;
      resolve(code ?? 128 + signalNumber(signal));
    });
  });
}

function signalNumber(signal: NodeJS.Signals | null): number {
  const table: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGPIPE: 13, SIGTERM: 15 };
  return (signal && table[signal]) ?? 1;
}

/**
 * A socket service (qubesd for admin.*, the resident qmcp dom0 service):
 * the descriptor, the caller's stdin up to its half-close, the reply piped
 * back. The caller's status is 0 whatever the reply says, as qrexec reports
 * for a socket service; once the caller is `gone` the connection is closed,
 * as qrexec closes it, so the service's next write fails.
 */
export function runSocketService(path: string, call: Dom0Call, io: ServiceStdio, gone?: AbortSignal): Promise<number> {
  return new Promise((resolve) => {
    let connected = false;
    const sock = connect({ path, allowHalfOpen: true }, () => {
      connected = true;
      sock.write(socketServiceHeader(call));
      io.stdin.pipe(sock);
    });
    sock.pipe(io.stdout, { end: false });
    const shut = (): void => {
      sock.destroy();
    };
    if (gone?.aborted) shut();
    else gone?.addEventListener('abort', shut, { once: true });
    sock.on('error', () => {
      io.stdin.unpipe(sock);
      if (!connected) resolve(EXIT_PROBLEM);
    });
    sock.on('close', () => {
      gone?.removeEventListener('abort', shut);
      io.stdin.unpipe(sock);
      if (connected) resolve(0);
    });
  });
}
