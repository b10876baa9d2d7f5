/**
 * The self-test's one way to reach dom0 and the sandbox qubes: the same
 * `qrexec-client-vm TARGET SERVICE[+ARG]` call the MCP server makes, through
 * the client or a transport with its face, but keeping the raw stdout, stderr
 * and exit status, since the scenarios compare refusals byte for byte (the
 * server's runner drops stderr on purpose).
 */
import { spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { PassThrough } from 'node:stream';
import type { Readable, Writable } from 'node:stream';
import type { QrexecRunnerOptions, QrexecTransport } from '../qrexec.js';

/** What qrexec-client-vm showed: `status` null when the call did not finish (timeout, spawn, signal). */
export interface Reply {
  readonly status: number | null;
  readonly stdout: Buffer;
  readonly stderr: Buffer;
}

/** What a call may be told besides its bytes. */
export interface CallHooks {
  /** Called once when a dom0 service's reply starts with the gate's keepalive: the call waits for the operator. */
  readonly onWait?: () => void;
  /** Aborting ends the call (qrexec-client-vm killed), which withdraws a request that waits. */
  readonly signal?: AbortSignal;
}

/** One qrexec call from the principal qube; `argument` undefined means the bare service name. */
export interface Caller {
  call(target: string, service: string, argument?: string, payload?: Uint8Array, hooks?: CallHooks): Promise<Reply>;
}

/** A dom0 service that waits for the operator writes newlines until it answers (docs/action-gate.md). */
export function onlyKeepalive(stdout: Buffer): boolean {
  return stdout.length > 0 && stdout.every((b) => b === 0x0a);
}

const DEFAULT_CONCURRENCY = 4;
const DEFAULT_TIMEOUT_MS = 300_000;
const MAX_OUTPUT = 8 * 1024 * 1024;

/** One running call: the client's process, or a transport's call with the same face. */
interface Running extends EventEmitter {
  readonly stdin: Writable;
  readonly stdout: Readable;
  readonly stderr: Readable;
  kill(signal: NodeJS.Signals): unknown;
}
type Start = (target: string, service: string) => Running;

/** A Caller that spawns the client named in `options` for each call, a few calls at a time. */
export function spawnCaller(options: QrexecRunnerOptions): Caller {
  return queuedCaller(options, (target, service) =>
    spawn(options.client, ['--', target, service], { env: options.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] }),
  );
}

/**
 * A Caller whose calls go through `transport` in this process, a few at a
 * time: the simulator's router reached without a process per call.
 */
export function transportCaller(transport: QrexecTransport, options: Omit<QrexecRunnerOptions, 'client'> = {}): Caller {
  return queuedCaller(options, (target, service) => {
    const stdin = new PassThrough();
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    const stop = new AbortController();
    const running: Running = Object.assign(new EventEmitter(), { stdin, stdout, stderr, kill: () => stop.abort() });
    void transport(target, service, { stdin, stdout, stderr }, stop.signal).then(
      // a killed call has no status, as a killed client has none
      (status) => {
        let open = 2;
        const closed = (): void => void (--open === 0 && running.emit('close', stop.signal.aborted ? null : status));
        stdout.once('end', closed).end();
        stderr.once('end', closed).end();
      },
      (err: unknown) => running.emit('error', err),
    );
    return running;
  });
}

function queuedCaller(options: Pick<QrexecRunnerOptions, 'concurrency' | 'timeoutMs'>, start: Start): Caller {
  const limit = Math.max(1, options.concurrency ?? DEFAULT_CONCURRENCY);
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  let running = 0;
  const waiting: (() => void)[] = [];
  const acquire = (): Promise<void> => {
    if (running < limit) {
      running++;
      return Promise.resolve();
    }
    return new Promise((wake) => waiting.push(wake));
  };
  const release = (): void => {
    const next = waiting.shift();
    if (next) next();
    else running--;
  };
  const once = (target: string, service: string, payload: Uint8Array | undefined, hooks: CallHooks): Promise<Reply> =>
    new Promise((resolve) => {
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let size = 0;
      let done = false;
      const finish = (status: number | null): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        resolve({ status, stdout: Buffer.concat(out), stderr: Buffer.concat(err) });
      };
      const child = start(target, service);
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        finish(null);
      }, timeoutMs);
      const keep = (into: Buffer[]) => (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_OUTPUT) child.kill('SIGKILL');
        else into.push(chunk);
      };
      // a dom0 service's answer starts with its JSON; one that starts with a newline is a keepalive: the call waits
      let first = true;
      child.stdout.on('data', (chunk: Buffer) => {
        keep(out)(chunk);
        if (first && chunk[0] === 0x0a) hooks.onWait?.();
        first = false;
      });
      const abort = (): void => void child.kill('SIGKILL');
      if (hooks.signal?.aborted) abort();
      else hooks.signal?.addEventListener('abort', abort, { once: true });
      child.on('close', () => hooks.signal?.removeEventListener('abort', abort));
      child.stderr.on('data', keep(err));
      child.on('error', () => finish(null));
      child.on('close', (status: number | null) => finish(size > MAX_OUTPUT ? null : status));
      child.stdin.on('error', () => undefined);
      child.stdin.end(payload === undefined ? undefined : Buffer.from(payload));
    });
  return {
    async call(target, service, argument, payload, hooks = {}) {
      await acquire();
      try {
        return await once(target, argument === undefined ? service : `${service}+${argument}`, payload, hooks);
      } finally {
        release();
      }
    },
  };
}
