/**
 * The self-test's one way to reach dom0 and the sandbox qubes: the same
 * `qrexec-client-vm TARGET SERVICE[+ARG]` invocation the MCP server makes,
 * but keeping the raw stdout, stderr and exit status, since the scenarios
 * compare refusals byte for byte (the server's runner drops stderr on purpose).
 */
import { spawn } from 'node:child_process';
import type { QrexecRunnerOptions } from '../qrexec.js';

/** What qrexec-client-vm showed: `status` null when the call did not finish (timeout, spawn, signal). */
export interface Reply {
  readonly status: number | null;
  readonly stdout: Buffer;
  readonly stderr: Buffer;
}

/** One qrexec call from the principal qube; `argument` undefined means the bare service name. */
export interface Caller {
  call(target: string, service: string, argument?: string, payload?: Uint8Array): Promise<Reply>;
}

const DEFAULT_CONCURRENCY = 4;
const DEFAULT_TIMEOUT_MS = 300_000;
const MAX_OUTPUT = 8 * 1024 * 1024;

/** A Caller that spawns the client named in `options`, a few calls at a time. */
export function spawnCaller(options: QrexecRunnerOptions): Caller {
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
  const once = (target: string, service: string, payload: Uint8Array | undefined): Promise<Reply> =>
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
      const child = spawn(options.client, ['--', target, service], { env: options.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        finish(null);
      }, timeoutMs);
      const keep = (into: Buffer[]) => (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_OUTPUT) child.kill('SIGKILL');
        else into.push(chunk);
      };
      child.stdout.on('data', keep(out));
      child.stderr.on('data', keep(err));
      child.on('error', () => finish(null));
      child.on('close', (status: number | null) => finish(size > MAX_OUTPUT ? null : status));
      child.stdin.on('error', () => undefined);
      child.stdin.end(payload === undefined ? undefined : Buffer.from(payload));
    });
  return {
    async call(target, service, argument, payload) {
      await acquire();
      try {
        return await once(target, argument === undefined ? service : `${service}+${argument}`, payload);
      } finally {
        release();
      }
    },
  };
}
