import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { ChainHead } from './append.js';
import { appendDurably } from './files.js';

/**
 * A copy of the chain head kept where the log cannot rewrite it, so that
 * verify can tell a truncated tail from a log that simply ends.
 */
export interface AuditWitness {
  /** Where the heads are kept, for reports. */
  readonly name: string;
  record(head: ChainHead): Promise<void>;
  /** Every head recorded so far; null when the witness cannot be read. */
  heads(): Promise<ChainHead[] | null>;
}

const TAG = 'qmcp-audit';
const HEAD_LINE = /^head seq=([1-9][0-9]{0,15}) hash=([0-9a-f]{64})$/;
const COMMAND_TIMEOUT_MS = 10_000;

function formatHead(head: ChainHead): string {
  return `head seq=${head.seq} hash=${head.hash}`;
}

function parseHeads(text: string): ChainHead[] {
  const heads: ChainHead[] = [];
  for (const line of text.split('\n')) {
    const m = HEAD_LINE.exec(line.trim());
    if (m) heads.push({ seq: Number(m[1]), hash: m[2] as string });
  }
  return heads;
}

/** A witness file of `head seq=N hash=H` lines, for the simulator and tests. */
export function fileWitness(path: string): AuditWitness {
  return {
    name: path,
    async record(head) {
      await appendDurably(path, Buffer.from(formatHead(head) + '\n'));
    },
    async heads() {
      try {
        return parseHeads(await readFile(path, 'utf8'));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
        return null;
      }
    },
  };
}

/** Runs a command with `input` on stdin; resolves to its stdout, rejects unless it exits 0. */
function run(command: string, args: string[], input: string): Promise<string> {
  return new Promise((done, fail) => {
    const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'ignore'], timeout: COMMAND_TIMEOUT_MS });
    const out: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.on('error', fail);
    child.on('close', (code) => {
      if (code === 0) done(Buffer.concat(out).toString('utf8'));
      else fail(new Error(`${command} exited with ${code}`));
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(input);
  });
}

/**
 * The system journal, under the identifier `qmcp-audit`. dom0 has both
 * systemd-cat and logger; logger is the fallback if systemd-cat is absent.
 */
export function journalWitness(): AuditWitness {
  return {
    name: `journal (${TAG})`,
    async record(head) {
      const message = formatHead(head);
      try {
        await run('systemd-cat', ['-t', TAG, '-p', 'info'], message + '\n');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        await run('logger', ['-t', TAG, '-p', 'user.info', '--', message], '');
      }
    },
    async heads() {
      try {
        return parseHeads(await run('journalctl', ['-q', '--no-pager', '-o', 'cat', '-t', TAG], ''));
      } catch {
        return null;
      }
    },
  };
}

/** The journal on a real dom0 (ROOT '/'); a file under ROOT otherwise. */
export function defaultWitness(root: string): AuditWitness {
  return resolve(root) === '/' ? journalWitness() : fileWitness(join(root, 'var', 'lib', 'qmcp', 'audit-witness'));
}
