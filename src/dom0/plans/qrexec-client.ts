/**
 * A call from dom0 into a qube, as Qubes' own tools make one
 * (qubes-core-admin-client, `QubesLocal.run_service`):
 * `/usr/lib/qubes/qrexec-client -d QUBE 'USER:QUBESRPC SERVICE+ARG dom0'`.
 * qrexec-client from dom0 goes through no policy; what may run was decided
 * before the call. The reply is kept as bytes, bounded; it is never
 * interpreted here.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';

/** Bytes of a reply kept at most; a longer one fails the call. */
export const MAX_REPLY_BYTES = 256 * 1024;

/** What the principal's qrexec-client-vm would have shown for a call that did not complete. */
export const EXIT_PROBLEM = 125;

export function qrexecClientPath(root: string): string {
  return join(root, 'usr', 'lib', 'qubes', 'qrexec-client');
}

export interface InQubeReply {
  readonly status: number;
  readonly stdout: Buffer;
  /** Why the call did not complete (too long a reply, a deadline, the client failing); absent when it did. */
  readonly problem?: string;
}

export function callIntoQube(client: string, qube: string, service: string, argument: string, payload: Buffer, timeoutMs: number): Promise<InQubeReply> {
  return new Promise((resolve) => {
    const child = spawn(client, ['-d', qube, `root:QUBESRPC ${service}+${argument} dom0`], { stdio: ['pipe', 'pipe', 'ignore'] });
    const chunks: Buffer[] = [];
    let size = 0;
    let problem: string | undefined;
    const stop = (why: string): void => {
      problem ??= why;
      child.kill('SIGKILL');
    };
    const timer = setTimeout(() => stop(`no answer within ${Math.round(timeoutMs / 1000)} s`), timeoutMs);
    child.stdout.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_REPLY_BYTES) stop(`reply over ${MAX_REPLY_BYTES} bytes`);
      else chunks.push(c);
    });
    let settled = false;
    const settle = (code: number | null): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (problem === undefined && code === null) problem = 'qrexec-client ended by a signal';
      resolve(problem === undefined ? { status: code ?? EXIT_PROBLEM, stdout: Buffer.concat(chunks) } : { status: EXIT_PROBLEM, stdout: Buffer.alloc(0), problem });
    };
    child.stdin.on('error', () => undefined);
    // a client that could not be started emits no close
    child.on('error', (err) => {
      problem ??= `qrexec-client: ${err.message}`;
      settle(null);
    });
    child.on('close', settle);
    child.stdin.end(payload);
  });
}
