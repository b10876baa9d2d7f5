/**
 * Runs `qrexec-client-vm TARGET SERVICE[+ARG]`: the principal's only way to
 * reach dom0 or a sandbox qube. The child's stderr is never read into
 * anything the agent sees; an outcome says only how the call ended.
 */
import { spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { PassThrough, Writable, type Readable } from 'node:stream';
import { QmcpError } from '../shared/errors.js';

/** Exit status qrexec-client-vm gives a call the policy (or a dom0 service) refused. */
export const REFUSED_EXIT_STATUS = 126;

/**
 * A call made without a process: what the simulator's router offers on its
 * socket (src/cli/sim-principal.ts). Resolves to the status
 * qrexec-client-vm would exit with; `signal` ends the call.
 */
export type QrexecTransport = (target: string, service: string, stdio: { stdin: Readable; stdout: Writable; stderr: Writable }, signal: AbortSignal) => Promise<number>;

export interface QrexecRunnerOptions {
  /** Path of qrexec-client-vm (the simulator ships a drop-in). */
  readonly client: string;
  /** In place of starting `client` for every call (the simulator, which a real machine's cheap C client stands for). */
  readonly transport?: QrexecTransport;
  /** Environment of the child; the simulator's drop-in reads QMCP_QREXEC_SOCKET from it. */
  readonly env?: NodeJS.ProcessEnv;
  /** Calls running at once; the rest wait their turn. */
  readonly concurrency?: number;
  /** Default wall-clock limit of one call. */
  readonly timeoutMs?: number;
  /** Default cap on the bytes kept from the child's stdout. */
  readonly maxOutput?: number;
}

export interface QrexecCall {
  readonly target: string;
  readonly service: string;
  /** The qrexec argument; absent means the bare service name. */
  readonly argument?: string;
  readonly payload?: Uint8Array;
  readonly signal?: AbortSignal;
  readonly timeoutMs?: number;
  readonly maxOutput?: number;
}

export type QrexecOutcome =
  /** The child exited on its own with this status. */
  | { readonly kind: 'exited'; readonly status: number; readonly stdout: Buffer }
  /** Exit 126: denied by policy or by a dom0 service; deliberately opaque. */
  | { readonly kind: 'refused' }
  /** The call did not finish: timeout, output over the cap, spawn failure or a signal. */
  | { readonly kind: 'failed'; readonly reason: 'timeout' | 'too-large' | 'spawn' | 'signal' };

/** Thrown when the caller's signal aborted the call; the child has been killed. */
export class QrexecAborted extends QmcpError {
  readonly code = 'ERR_QMCP_QREXEC_ABORTED';

  constructor() {
    super('aborted');
  }
}

const DEFAULT_CONCURRENCY = 4;
/** A call longer than this is ended (the simulator lets an unanswered ask lapse before it). */
export const DEFAULT_TIMEOUT_MS = 300_000;
const DEFAULT_MAX_OUTPUT = 8 * 1024 * 1024;

/** What a call runs in: the client's process, or a transport's call with the same face. */
interface CallChild extends EventEmitter {
  readonly stdin: Writable | null;
  readonly stdout: Readable | null;
  kill(signal?: NodeJS.Signals): boolean;
}

/** A transport's call as a child: its stdout, then `close` with the status (null once killed). */
function transportChild(transport: QrexecTransport, target: string, service: string): CallChild {
  const stdin = new PassThrough();
  const stdout = new PassThrough();
  const stop = new AbortController();
  let killed = false;
  const child: CallChild = Object.assign(new EventEmitter(), {
    stdin,
    stdout,
    kill: (): boolean => {
      killed = true;
      stop.abort();
      return true;
    },
  });
  const stderr = new Writable({ write: (_c, _e, done) => done() });
  transport(target, service, { stdin, stdout, stderr }, stop.signal).then(
    (status) => {
      stdout.once('end', () => child.emit('close', killed ? null : status));
      stdout.end();
    },
    (err: unknown) => child.emit('error', err),
  );
  return child;
}

export class QrexecRunner {
  private readonly client: string;
  private readonly transport: QrexecTransport | undefined;
  private readonly env: NodeJS.ProcessEnv | undefined;
  private readonly concurrency: number;
  private readonly timeoutMs: number;
  private readonly maxOutput: number;
  private running = 0;
  private readonly waiting: (() => void)[] = [];
  private readonly children = new Set<CallChild>();
  private closed = false;

  constructor(options: QrexecRunnerOptions) {
    this.client = options.client;
    this.transport = options.transport;
    this.env = options.env;
    this.concurrency = Math.max(1, options.concurrency ?? DEFAULT_CONCURRENCY);
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.maxOutput = options.maxOutput ?? DEFAULT_MAX_OUTPUT;
  }

  /** Children alive right now (for shutdown and tests). */
  get active(): number {
    return this.children.size;
  }

  async call(call: QrexecCall): Promise<QrexecOutcome> {
    if (call.signal?.aborted === true || this.closed) throw new QrexecAborted();
    await this.acquire(call.signal);
    try {
      return await this.spawnOne(call);
    } finally {
      this.release();
    }
  }

  /** Kills every child and refuses further calls. */
  close(): void {
    this.closed = true;
    for (const child of this.children) child.kill('SIGKILL');
    this.children.clear();
    for (const wake of this.waiting.splice(0)) wake();
  }

  private acquire(signal: AbortSignal | undefined): Promise<void> {
    if (this.running < this.concurrency) {
      this.running++;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const wake = (): void => {
        signal?.removeEventListener('abort', onAbort);
        if (this.closed || signal?.aborted === true) {
          reject(new QrexecAborted());
          return;
        }
        this.running++;
        resolve();
      };
      const onAbort = (): void => {
        const i = this.waiting.indexOf(wake);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(new QrexecAborted());
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(wake);
    });
  }

  private release(): void {
    this.running--;
    const next = this.waiting.shift();
    if (next) next();
  }

  private spawnOne(call: QrexecCall): Promise<QrexecOutcome> {
    const service = call.argument === undefined ? call.service : `${call.service}+${call.argument}`;
    const cap = call.maxOutput ?? this.maxOutput;
    return new Promise<QrexecOutcome>((resolve, reject) => {
      let child: CallChild;
      try {
        // '--' keeps a target or service from ever being read as an option
        child = this.transport
          ? transportChild(this.transport, call.target, service)
          : spawn(this.client, ['--', call.target, service], {
              env: this.env ?? process.env,
              stdio: ['pipe', 'pipe', 'ignore'],
            });
      } catch {
        resolve({ kind: 'failed', reason: 'spawn' });
        return;
      }
      this.children.add(child);
      const chunks: Buffer[] = [];
      let size = 0;
      let settled = false;
      let ending: QrexecOutcome | 'aborted' | null = null;

      const stop = (why: QrexecOutcome | 'aborted'): void => {
        if (ending === null) ending = why;
        child.kill('SIGKILL');
      };
      const onAbort = (): void => stop('aborted');
      const timer = setTimeout(() => stop({ kind: 'failed', reason: 'timeout' }), call.timeoutMs ?? this.timeoutMs);
      call.signal?.addEventListener('abort', onAbort, { once: true });

      const finish = (outcome: QrexecOutcome | 'aborted'): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        call.signal?.removeEventListener('abort', onAbort);
        this.children.delete(child);
        if (outcome === 'aborted') reject(new QrexecAborted());
        else resolve(outcome);
      };

      child.stdout?.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > cap) {
          stop({ kind: 'failed', reason: 'too-large' });
          return;
        }
        chunks.push(chunk);
      });
      child.on('error', () => finish(ending ?? { kind: 'failed', reason: 'spawn' }));
      child.on('close', (status: number | null) => {
        if (ending !== null) finish(ending);
        else if (this.closed) finish('aborted');
        else if (status === REFUSED_EXIT_STATUS) finish({ kind: 'refused' });
        else if (status === null) finish({ kind: 'failed', reason: 'signal' });
        else finish({ kind: 'exited', status, stdout: Buffer.concat(chunks) });
      });
      // a child that exits before reading its stdin must not crash the server
      child.stdin?.on('error', () => undefined);
      child.stdin?.end(call.payload === undefined ? undefined : Buffer.from(call.payload));
    });
  }
}
