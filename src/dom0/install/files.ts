/** File writes the installer makes: planned first, then atomic, with a backup of anything replaced. */
import { createHash } from 'node:crypto';
import { chmodSync, closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, statSync, writeSync } from 'node:fs';
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

/** What writing this file would do to ROOT. */
export function statusOf(root: string, file: PlannedFile): FileStatus {
  const target = join(root, file.path);
  let current: Buffer;
  try {
    current = readFileSync(target);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'new';
    throw err;
  }
  const mode = statSync(target).mode & 0o7777;
  return current.equals(file.content) && mode === file.mode ? 'unchanged' : 'changed';
}

/** Where the previous version of a replaced file is kept: outside qrexec's directories, named by its hash. */
export function backupPath(file: PlannedFile, previous: Buffer): string {
  return join('var', 'lib', 'qmcp', 'backup', `${file.path}.${sha256(previous).slice(0, 16)}`);
}

/** Writes beside the target, syncs, then renames over it: a reader sees the old file or the new one. */
export function writeAtomic(target: string, content: Buffer, mode: number): void {
  const dir = dirname(target);
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  const temp = join(dir, `.qmcp-install-${process.pid}.tmp`);
  const fd = openSync(temp, 'w', mode);
  try {
    writeSync(fd, content);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  chmodSync(temp, mode);
  renameSync(temp, target);
  const dirFd = openSync(dir, 'r');
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
}

/** Writes one planned file; returns the backup's path under ROOT when it replaced different content. */
export function applyFile(root: string, file: PlannedFile): string | null {
  const target = join(root, file.path);
  let backup: string | null = null;
  try {
    const previous = readFileSync(target);
    if (!previous.equals(file.content)) {
      backup = backupPath(file, previous);
      writeAtomic(join(root, backup), previous, 0o600);
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  writeAtomic(target, file.content, file.mode);
  return backup;
}
