import { stat, unlink } from 'node:fs/promises';
import { basename } from 'node:path';
import type { AuditEntry } from './entry.js';
import { parseLine } from './entry.js';
import type { ChainFile } from './files.js';
import { lastLine, rotatedFiles } from './files.js';

/**
 * Retention: rotated files past the operator's bounds are deleted, oldest
 * first, each only after a `prune` entry recording its last entry's seq and
 * hash is on disk. That checkpoint is chained and witnessed like any entry,
 * so verify can prove the chain from the prune point on and say what was
 * pruned, when, up to which hash. The live file is never pruned.
 */
export interface Retention {
  /** Rotated files are pruned while together larger than this; null: no size bound. */
  readonly maxBytes: number | null;
  /** Rotated files whose newest entry is older than this are pruned; null: no age bound. */
  readonly maxAgeMs: number | null;
}

/** The operation of a checkpoint entry. */
export const PRUNE_OPERATION = 'audit-prune';

/** Where the chain was cut: the last pruned entry. */
export interface PrunePoint {
  readonly seq: number;
  readonly hash: string;
}

const DETAIL = /^through seq=([1-9][0-9]{0,15}) hash=([0-9a-f]{64}) file=(\S{1,64})$/;

export function checkpointDetail(point: PrunePoint, file: string): string {
  return `through seq=${point.seq} hash=${point.hash} file=${basename(file)}`;
}

/** The prune point a checkpoint entry records; null for any other entry. */
export function prunePointOf(entry: AuditEntry): PrunePoint | null {
  if (entry.kind !== 'prune' || entry.operation !== PRUNE_OPERATION || entry.detail === null) return null;
  const m = DETAIL.exec(entry.detail);
  return m ? { seq: Number(m[1]), hash: m[2] as string } : null;
}

/** A rotated file retention says to delete, with its last entry. */
export interface DueFile {
  readonly file: ChainFile;
  readonly last: AuditEntry;
}

/**
 * The rotated files past the bounds, oldest first. Stops at the first file
 * whose last entry cannot be read: a broken chain is left whole for verify
 * to report, never pruned away.
 */
export async function dueForPruning(logPath: string, retention: Retention, now: Date): Promise<DueFile[]> {
  if (retention.maxBytes === null && retention.maxAgeMs === null) return [];
  const rotated = await rotatedFiles(logPath);
  const sizes = await Promise.all(rotated.map(async (f) => (await stat(f.path)).size));
  let total = sizes.reduce((a, b) => a + b, 0);
  const due: DueFile[] = [];
  for (const [i, file] of rotated.entries()) {
    const line = await lastLine(file.path);
    const parsed = line === null ? null : parseLine(line);
    if (parsed === null || 'problem' in parsed) break;
    const tooBig = retention.maxBytes !== null && total > retention.maxBytes;
    const tooOld = retention.maxAgeMs !== null && now.getTime() - Date.parse(parsed.entry.time) > retention.maxAgeMs;
    if (!tooBig && !tooOld) break;
    due.push({ file, last: parsed.entry });
    total -= sizes[i] as number;
  }
  return due;
}

export async function removeFile(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}
