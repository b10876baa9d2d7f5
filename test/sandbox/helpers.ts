import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { PassThrough } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { BWRAP_MISSING_MESSAGE, findBwrap, QubeSandboxes } from '../../src/sim/sandbox/index.js';
import type { QubeProcess, QubeShape, ServiceCall } from '../../src/sim/sandbox/index.js';
import { compiled, weakenedCopy, weakenedFile } from '../../verify/weakened-module.js';

/** Sandbox tests skip, saying why, only when bwrap is absent. */
export const skipWithoutBwrap: string | false = findBwrap() === undefined ? `skipped: ${BWRAP_MISSING_MESSAGE}` : false;

export type Sandboxes = typeof QubeSandboxes;

/** The sandboxes with each guard of `edits` replaced; the copy still binds the agent from the compiled folder. */
export async function weakenedSandboxes(...edits: readonly (readonly [string, string])[]): Promise<Sandboxes> {
  const here = JSON.stringify(dirname(compiled('sim/sandbox/sandboxes')));
  let path = weakenedFile('sim/sandbox/sandboxes', 'const AGENT_FROM = import.meta.dirname;', `const AGENT_FROM = ${here};`);
  for (const [guard, weak] of edits) path = weakenedCopy(path, guard, weak);
  return ((await import(pathToFileURL(path).href)) as { QubeSandboxes: Sandboxes }).QubeSandboxes;
}

export const FLEET: Readonly<Record<string, QubeShape>> = {
  'tpl': { klass: 'TemplateVM' },
  'app': { klass: 'AppVM', template: 'tpl' },
  'app2': { klass: 'AppVM', template: 'tpl' },
  'dvm-tpl': { klass: 'AppVM', template: 'tpl' },
  'disp1': { klass: 'DispVM', template: 'dvm-tpl' },
  'standalone': { klass: 'StandaloneVM' },
};

export async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'qmcp-sandbox-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Runs FN with sandboxes of FLEET; SERVICESDIR puts other in-qube services into its templates (a weakened variant). */
export async function withSandboxes(fn: (s: QubeSandboxes, dir: string) => Promise<void>, servicesDir?: string): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'qmcp-sandbox-'));
  const sandboxes = new QubeSandboxes({ dir, lookup: (name) => FLEET[name], ...(servicesDir === undefined ? {} : { servicesDir }) });
  try {
    await fn(sandboxes, dir);
  } finally {
    await sandboxes.stopAll();
    await rm(dir, { recursive: true, force: true });
  }
}

export interface Output {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export function collect(child: QubeProcess, input = ''): Promise<Output> {
  return new Promise((resolve, reject) => {
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.on('error', reject);
    child.on('close', (status) =>
      resolve({ status, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() }),
    );
    // A command that ends (or fails to start) before reading its input is not an error here.
    child.stdin.on('error', () => undefined);
    child.stdin.end(input);
  });
}

/** Runs a shell command as root inside a running qube. */
export function sh(sandboxes: QubeSandboxes, qube: string, script: string, input = ''): Promise<Output> {
  return collect(sandboxes.spawn(qube, ['/bin/sh', '-c', script]), input);
}

export interface ServiceOutput {
  readonly status: number;
  readonly stdout: Buffer;
  readonly stderr: Buffer;
}

export async function callService(
  sandboxes: QubeSandboxes,
  call: Omit<ServiceCall, 'stdin' | 'stdout' | 'stderr'>,
  input: Uint8Array,
): Promise<ServiceOutput> {
  const stdin = new PassThrough();
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  stdout.on('data', (c: Buffer) => out.push(c));
  stderr.on('data', (c: Buffer) => err.push(c));
  stdin.end(Buffer.from(input));
  const status = await sandboxes.run({ ...call, stdin, stdout, stderr });
  return { status, stdout: Buffer.concat(out), stderr: Buffer.concat(err) };
}

/** How many host processes have TOKEN in their command line (a qube's processes are host processes). */
export function hostProcessesWith(token: string): number {
  let count = 0;
  for (const pid of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(pid)) continue;
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, 'latin1').includes(token)) count++;
    } catch {
      // the process ended meanwhile
    }
  }
  return count;
}
