import { existsSync, renameSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import type { AuditEntry, EntryBody } from './entry.js';
import { GENESIS_HASH, MAX_LINE_BYTES, lineOf, makeBody, parseLine, seal } from './entry.js';
import { appendDurably, lastLine, rotatedFiles, syncDirectory } from './files.js';
import type { Retention } from './prune.js';
import { PRUNE_OPERATION, checkpointDetail, dueForPruning, removeFile } from './prune.js';
import { withLock } from '../lockfile.js';
import { QmcpError } from '../../shared/errors.js';

/** The last entry of the chain: what the next entry links to. */
export interface ChainHead {
  readonly seq: number;
  readonly hash: string;
}

export interface AppendOptions {
  readonly logPath: string;
  /** The live file is rotated before an append once it has reached this size. */
  readonly maxFileBytes: number;
  readonly lockTimeoutMs: number;
  readonly clock: () => Date;
  /** Checked after each rotation; null or absent keeps every rotated file. */
  readonly retention?: Retention | null;
}

/** Thrown when the log's last entry cannot be chained onto. */
export class BrokenHeadError extends QmcpError {
  readonly code = 'ERR_QMCP_AUDIT_BROKEN_HEAD';
}

async function headOf(path: string): Promise<ChainHead | null> {
  const line = await lastLine(path);
  if (line === null) return null;
  const parsed = parseLine(line);
  if ('problem' in parsed) throw new BrokenHeadError(`last entry of ${path}: ${parsed.problem}`);
  return { seq: parsed.entry.seq, hash: parsed.entry.hash };
}

async function currentHead(logPath: string): Promise<ChainHead> {
  const live = await headOf(logPath);
  if (live) return live;
  const rotated = await rotatedFiles(logPath);
  const newest = rotated[rotated.length - 1];
  return (newest && (await headOf(newest.path))) ?? { seq: 0, hash: GENESIS_HASH };
}

function sizeOf(path: string): number {
  try {
    return statSync(path).size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
}

/** Moves the live file to the next rotated name; the chain runs on across files. */
async function rotate(logPath: string): Promise<void> {
  const rotated = await rotatedFiles(logPath);
  const next = (rotated[rotated.length - 1]?.index ?? 0) + 1;
  renameSync(logPath, `${logPath}.${next}`);
  await syncDirectory(dirname(logPath));
}

/** Writes one sealed entry with one write and fsyncs it. */
async function writeEntry(logPath: string, entry: AuditEntry): Promise<void> {
  const line = Buffer.from(lineOf(entry) + '\n', 'utf8');
  if (line.length > MAX_LINE_BYTES) throw new RangeError('audit entry exceeds the line bound');
  await appendDurably(logPath, line);
}

/**
 * Deletes the rotated files retention no longer keeps, oldest first, each
 * after its checkpoint entry is on disk; a crash between the two leaves a
 * checkpoint whose file is still there, which verify accepts. Runs under the
 * lock; returns the new head.
 */
async function pruneUnderLock(options: AppendOptions, head: ChainHead): Promise<ChainHead> {
  if (!options.retention) return head;
  const due = await dueForPruning(options.logPath, options.retention, options.clock());
  for (const { file, last } of due) {
    const body = makeBody({ kind: 'prune', principal: 'dom0', operation: PRUNE_OPERATION, result: 'ok', detail: checkpointDetail(last, file.path) });
    const entry = seal(body, head.seq + 1, options.clock(), head.hash);
    await writeEntry(options.logPath, entry);
    head = { seq: entry.seq, hash: entry.hash };
    await removeFile(file.path);
  }
  if (due.length > 0) await syncDirectory(dirname(options.logPath));
  return head;
}

/**
 * Appends one entry under the lock: reads the head, rotates if due (then
 * prunes what retention no longer keeps), writes the line with one write
 * and fsyncs it before returning. Never creates the log's directory: a
 * missing directory is a failure the caller refuses on.
 */
export async function appendEntry(options: AppendOptions, body: EntryBody): Promise<AuditEntry> {
  const { logPath } = options;
  return withLock(`${logPath}.lock`, options.lockTimeoutMs, async () => {
    let head = await currentHead(logPath);
    let size = sizeOf(logPath);
    if (size > 0 && size >= options.maxFileBytes) {
      await rotate(logPath);
      head = await pruneUnderLock(options, head);
      size = sizeOf(logPath);
    }
    const entry = seal(body, head.seq + 1, options.clock(), head.hash);
    await writeEntry(logPath, entry);
    if (size === 0) await syncDirectory(dirname(logPath));
    return entry;
  });
}

/** Prunes what retention no longer keeps, appending only the checkpoints; the new head, or null when nothing was due. */
export async function pruneAudit(options: AppendOptions): Promise<ChainHead | null> {
  // retention removes rotated files only: with none, nothing to take the lock for (an install whose log is still empty)
  if (!existsSync(options.logPath) || (await rotatedFiles(options.logPath)).length === 0) return null;
  return withLock(`${options.logPath}.lock`, options.lockTimeoutMs, async () => {
    const before = await currentHead(options.logPath);
    const after = await pruneUnderLock(options, before);
    return after.seq === before.seq ? null : after;
  });
}
