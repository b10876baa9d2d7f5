import { open, readdir } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { MAX_LINE_BYTES } from './entry.js';
import { QmcpError } from '../../shared/errors.js';

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
    names = await readdir(dirname(logPath));
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

/**
 * The last line of a file, without its newline; null when the file is
 * missing or empty. Reads only the tail: no line is longer than MAX_LINE_BYTES.
 */
export async function lastLine(path: string): Promise<string | null> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  try {
    const size = (await handle.stat()).size;
    if (size === 0) return null;
    const length = Math.min(size, MAX_LINE_BYTES + 1);
    const buffer = Buffer.alloc(length);
    await handle.read(buffer, 0, length, size - length);
    if (buffer[length - 1] !== 0x0a) throw new TornTailError(`${path} does not end with a whole line`);
    const start = buffer.lastIndexOf(0x0a, length - 2) + 1;
    if (start === 0 && length < size) throw new TornTailError(`${path} ends with an over-long line`);
    return buffer.subarray(start, length - 1).toString('utf8');
  } finally {
    await handle.close();
  }
}
