import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { isAbsolute, join } from 'node:path';

/** The repository's src/qube, found from dist/test/qube or test/qube. */
export const qubeDir = join(import.meta.dirname, '..', '..', '..', 'src', 'qube');

/** dash when present (the shell of Debian templates), else sh; QMCP_TEST_SHELL=bash tries Fedora's. */
export const shell = process.env['QMCP_TEST_SHELL'] ?? (existsSync('/bin/dash') ? '/bin/dash' : '/bin/sh');

/** The user running the tests: the service runs a command as this one without switching. */
export const me = userInfo().username;

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
    const child = spawn(shell, [isAbsolute(script) ? script : join(qubeDir, script), ...args], {
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

let weakenedCount = 0;

/**
 * A copy of the service SCRIPT in DIR with GUARD (present exactly once)
 * replaced by WEAKENED: a service without one of its checks.
 */
export async function weakenedScript(dir: string, script: string, guard: string, weakened: string): Promise<string> {
  const text = await readFile(join(qubeDir, script), 'utf8');
  if (text.split(guard).length !== 2) throw new Error(`the guard ${JSON.stringify(guard)} is not in ${script} exactly once`);
  const out = join(dir, `weakened-${weakenedCount++}-${script}`);
  await writeFile(out, text.replace(guard, weakened));
  await chmod(out, 0o755);
  return out;
}

/** A directory with executables NAME printing BODY's output, to put first on PATH. */
export async function fakeBin(dir: string, tools: Readonly<Record<string, string>>): Promise<string> {
  for (const [name, body] of Object.entries(tools)) {
    await writeFile(join(dir, name), `#!/bin/sh\n${body}\n`);
    await chmod(join(dir, name), 0o755);
  }
  return dir;
}
