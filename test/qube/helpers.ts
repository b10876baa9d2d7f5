import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The repository's src/qube, found from dist/test/qube or test/qube. */
export const qubeDir = join(import.meta.dirname, '..', '..', '..', 'src', 'qube');

/** dash when present (the shell of Debian templates), else sh; QMCP_TEST_SHELL=bash tries Fedora's. */
export const shell = process.env['QMCP_TEST_SHELL'] ?? (existsSync('/bin/dash') ? '/bin/dash' : '/bin/sh');

export interface RunResult {
  readonly status: number | null;
  readonly stdout: Buffer;
  readonly stderr: Buffer;
}

export function runScript(
  script: string,
  args: readonly string[],
  input: Uint8Array,
  env: Record<string, string> = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(shell, [join(qubeDir, script), ...args], {
      env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout: Buffer.concat(out), stderr: Buffer.concat(err) }));
    // A service may stop reading early (refused request); that is not a test failure.
    child.stdin.on('error', () => undefined);
    child.stdin.end(Buffer.from(input));
  });
}

export async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'qmcp-qube-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
