/** The installer's files: what it plans to write, where a replaced one is kept, and the atomic write. */
import { createHash } from 'node:crypto';
import { chmodSync, closeSync, fsyncSync, mkdirSync, openSync, renameSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';

export interface PlannedFile {
  /** Path under ROOT, '/'-separated, no leading slash. */
  readonly path: string;
  readonly content: Buffer;
  readonly mode: number;
}

export type FileStatus = 'new' | 'changed' | 'unchanged';

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Where the previous version of a replaced file is kept: outside qrexec's directories, named by its hash. */
export function backupPath(path: string, previous: Buffer): string {
  return join('var', 'lib', 'qmcp', 'backup', `${path}.${sha256(previous).slice(0, 16)}`);
}

/**
 * Writes beside the target, syncs, then renames over it: a reader sees the
 * old file or the new one. Without `durable` nothing waits for the disk (a
 * simulated dom0 thrown away after a check).
 */
export function writeAtomic(target: string, content: Buffer, mode: number, durable = true): void {
  const dir = dirname(target);
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  const temp = join(dir, `.qmcp-install-${process.pid}.tmp`);
  const fd = openSync(temp, 'w', mode);
  try {
    writeSync(fd, content);
    if (durable) fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  chmodSync(temp, mode);
  renameSync(temp, target);
  if (!durable) return;
  const dirFd = openSync(dir, 'r');
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
}
