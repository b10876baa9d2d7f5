/**
 * The caller's side of a simulated qrexec call, shared by the drop-in
 * `qrexec-client-vm` and `qmcp sim qrexec`. Node stdlib only.
 */
import { connect } from 'node:net';
import { PassThrough, Transform } from 'node:stream';
import type { Readable, Writable } from 'node:stream';
import {
  EXIT_PROBLEM,
  EXIT_REFUSED,
  FRAME_EXIT,
  FRAME_REFUSED,
  FRAME_STDERR,
  FRAME_STDIN,
  FRAME_STDOUT,
  FrameParser,
  MAX_STDIN_FRAME,
  encodeFrame,
  encodeHeader,
} from './protocol.js';

/** Where a sandboxed qube finds its router socket when the environment names none. */
export const SANDBOX_SOCKET = '/run/qmcp/qrexec.sock';
export const SOCKET_ENV = 'QMCP_QREXEC_SOCKET';

export interface CallStdio {
  stdin: Readable;
  stdout: Writable;
  stderr: Writable;
}

/**
 * Makes one call through the router socket `socketPath` and resolves to the
 * exit status qrexec-client-vm would return. Never rejects.
 */
export function qrexecCall(socketPath: string, target: string, service: string, stdio: CallStdio, signal?: AbortSignal): Promise<number> {
  return new Promise((resolve) => {
    const parser = new FrameParser();
    let status: number | null = null;
    let settled = false;
    const framer = stdinFramer();
    const finish = (code: number): void => {
      if (settled) return;
      settled = true;
      stdio.stdin.unpipe(framer);
      stdio.stdin.pause();
      resolve(code);
    };
    const sock = connect(socketPath, () => {
      sock.write(encodeHeader({ target, service }));
      // the connection stays open after stdin ends: only the call's end closes it
      stdio.stdin.pipe(framer).pipe(sock, { end: false });
    });
    sock.on('data', (chunk: Buffer) => {
      for (const f of parser.push(chunk)) {
        if (f.type === FRAME_STDOUT) stdio.stdout.write(f.data);
        else if (f.type === FRAME_STDERR) stdio.stderr.write(f.data);
        else if (f.type === FRAME_EXIT && f.data.length === 4) status = f.data.readInt32BE(0);
        else if (f.type === FRAME_REFUSED) {
          stdio.stderr.write('Request refused\n');
          status = EXIT_REFUSED;
        }
      }
    });
    sock.on('error', (err: NodeJS.ErrnoException) => {
      if (status !== null) return;
      if (err.code === 'EPIPE' || err.code === 'ECONNRESET') return;
      stdio.stderr.write(`qrexec-client-vm: cannot reach qrexec at ${socketPath}: ${err.message}\n`);
      finish(EXIT_PROBLEM);
    });
    sock.on('close', () => {
      signal?.removeEventListener('abort', hangUp);
      if (status === null) stdio.stderr.write('qrexec-client-vm: connection to qrexec lost\n');
      finish(status ?? EXIT_PROBLEM);
    });
    // as a killed qrexec-client-vm: the connection goes, and qrexec ends the call
    const hangUp = (): void => {
      sock.destroy();
    };
    if (signal?.aborted) hangUp();
    else signal?.addEventListener('abort', hangUp, { once: true });
  });
}

/** The caller's stdin as stdin frames, then the empty frame that ends it. */
function stdinFramer(): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      for (let at = 0; at < chunk.length; at += MAX_STDIN_FRAME) this.push(encodeFrame(FRAME_STDIN, chunk.subarray(at, at + MAX_STDIN_FRAME)));
      cb();
    },
    flush(cb) {
      cb(null, encodeFrame(FRAME_STDIN));
    },
  });
}

export interface CollectedReply {
  readonly status: number;
  readonly stdout: Buffer;
  readonly stderr: Buffer;
}

/** One call with its whole input given and its whole output collected: what tests and checks compare. */
export async function qrexecCollect(socketPath: string, target: string, service: string, payload: string | Buffer = ''): Promise<CollectedReply> {
  const stdin = new PassThrough();
  stdin.end(payload);
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  stdout.on('data', (c: Buffer) => out.push(c));
  stderr.on('data', (c: Buffer) => err.push(c));
  const status = await qrexecCall(socketPath, target, service, { stdin, stdout, stderr });
  return { status, stdout: Buffer.concat(out), stderr: Buffer.concat(err) };
}

/** The router socket from the environment, else the fixed path inside a sandbox. */
export function socketFromEnv(env: NodeJS.ProcessEnv = process.env): string {
  const v = env[SOCKET_ENV];
  return v && v.length > 0 ? v : SANDBOX_SOCKET;
}
