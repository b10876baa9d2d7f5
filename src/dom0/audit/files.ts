import { closeSync, fstatSync, fsync, openSync, readdirSync, readSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { MAX_LINE_BYTES } from './entry.js';
import { QmcpError } from '../../shared/errors.js';

/*
 * The audit files are read and written with synchronous calls, a few system
 * calls each on a small local file, as their promise forms cost several
 * times the CPU in thread-pool handoffs on every append; only the flush,
 * which waits for the disk, runs off the event loop.
 */
const flush = promisify(fsync);

/** Where the log lives under ROOT ('/' on a real dom0, a directory in the simulator). */
export function auditLogPath(root: string): string {
  return join(root, 'var', 'log', 'qmcp', 'audit.log');
}

/** A file of the chain: rotated ones are `audit.log.1`, `.2`, … oldest first, then the live file. */
export interface ChainFile {
  readonly path: string;
  /** 1, 2, … for rotated files; null for the live file. */
  readonly index: number | null;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The rotated files next to `logPath`, oldest first. */
export async function rotatedFiles(logPath: string): Promise<ChainFile[]> {
  const pattern = new RegExp(`^${escapeRegExp(basename(logPath))}\\.([1-9][0-9]{0,8})$`);
  let names: string[];
  try {
    names = readdirSync(dirname(logPath));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const found: ChainFile[] = [];
  for (const name of names) {
    const m = pattern.exec(name);
    if (m) found.push({ path: join(dirname(logPath), name), index: Number(m[1]) });
  }
  return found.sort((a, b) => (a.index as number) - (b.index as number));
}

/** Every file of the chain in order: rotated files, then the live one. */
export async function chainFiles(logPath: string): Promise<ChainFile[]> {
  return [...(await rotatedFiles(logPath)), { path: logPath, index: null }];
}

/** Thrown when a file's tail is not a whole line, so nothing can be chained onto it. */
export class TornTailError extends QmcpError {
  readonly code = 'ERR_QMCP_AUDIT_TORN_TAIL';
}

/** How much of a file's tail is read first: most lines are far shorter than the bound. */
const FIRST_TAIL_BYTES = 4096;

/**
 * The last line of a file, without its newline; null when the file is
 * missing or empty. Reads only the tail: no line is longer than MAX_LINE_BYTES.
 */
export async function lastLine(path: string): Promise<string | null> {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  try {
    const size = fstatSync(fd).size;
    if (size === 0) return null;
    for (const want of [FIRST_TAIL_BYTES, MAX_LINE_BYTES + 1]) {
      const length = Math.min(size, want);
      const buffer = Buffer.alloc(length);
      readSync(fd, buffer, 0, length, size - length);
      if (buffer[length - 1] !== 0x0a) throw new TornTailError(`${path} does not end with a whole line`);
      const start = buffer.lastIndexOf(0x0a, length - 2) + 1;
      if (start > 0 || length === size) return buffer.subarray(start, length - 1).toString('utf8');
    }
    throw new TornTailError(`${path} ends with an over-long line`);
  } finally {
    closeSync(fd);
  }
}

/** Appends BYTES to PATH with one write and resolves once they are on disk (fsynced). */
export async function appendDurably(path: string, bytes: Buffer): Promise<void> {
  const fd = openSync(path, 'a', 0o640);
  try {
    if (writeSync(fd, bytes) !== bytes.length) throw new Error(`short write to ${path}`);
    await flush(fd);
  } finally {
    closeSync(fd);
  }
}

/** Flushes a directory's entries (a file made, renamed or removed in it) to disk. */
export async function syncDirectory(path: string): Promise<void> {
  const fd = openSync(path, 'r');
  try {
    await flush(fd);
  } finally {
    closeSync(fd);
  }
}
