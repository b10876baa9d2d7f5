/** Shared by the packaging tests: the checkout, a tar.gz reader, and async process runs. */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { OPERATIONS } from '../../src/shared/model/capabilities.js';

/** The checkout (tests run from dist/test/packaging). */
export const repo = resolve(import.meta.dirname, '..', '..', '..');

/** The services install.sh puts into a template: each in-qube operation's, and a sink's receiver. */
export const INQUBE_SERVICES: readonly string[] = [...OPERATIONS.filter((o) => o.target === 'in-qube').map((o) => o.service), 'qmcp.SinkPush'];

export const version = (JSON.parse(readFileSync(resolve(repo, 'package.json'), 'utf8')) as { version: string }).version;

export interface TarEntry {
  readonly path: string;
  readonly type: 'file' | 'dir';
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly mtime: number;
  readonly content: Buffer;
}

function field(h: Buffer, start: number, length: number): string {
  const raw = h.subarray(start, start + length);
  const end = raw.indexOf(0);
  return raw.subarray(0, end === -1 ? length : end).toString('utf8');
}

/** Reads a ustar .tar.gz (no pax or GNU extensions: the release writer uses none). */
export function readTarGz(data: Buffer): TarEntry[] {
  const tar = gunzipSync(data);
  const out: TarEntry[] = [];
  let at = 0;
  while (at + 512 <= tar.length) {
    const h = tar.subarray(at, at + 512);
    if (h.every((b) => b === 0)) break;
    const name = field(h, 0, 100);
    const prefix = field(h, 345, 155);
    const size = parseInt(field(h, 124, 12), 8);
    const typeflag = field(h, 156, 1);
    if (typeflag !== '0' && typeflag !== '5') throw new Error(`unexpected tar entry type ${JSON.stringify(typeflag)} for ${name}`);
    if (field(h, 257, 6) !== 'ustar') throw new Error(`not a ustar header: ${name}`);
    const path = (prefix ? `${prefix}/${name}` : name).replace(/\/$/, '');
    const content = Buffer.from(tar.subarray(at + 512, at + 512 + size));
    out.push({
      path,
      type: typeflag === '5' ? 'dir' : 'file',
      mode: parseInt(field(h, 100, 8), 8),
      uid: parseInt(field(h, 108, 8), 8),
      gid: parseInt(field(h, 116, 8), 8),
      mtime: parseInt(field(h, 136, 12), 8),
      content,
    });
    at += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
}

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

export interface Run {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a process without blocking the event loop (a simulated host may be serving in this process). */
export function run(cmd: string, args: readonly string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {}): Promise<Run> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    // a process that exits without reading its stdin is not an error here
    child.stdin.on('error', () => undefined);
    child.on('close', (status) => resolveRun({ status, stdout, stderr }));
    child.stdin.end(opts.input ?? '');
  });
}
