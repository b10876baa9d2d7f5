import { readFile } from 'node:fs/promises';
import type { AuditEntry } from './entry.js';
import { parseLine } from './entry.js';
import { auditLogPath, chainFiles } from './files.js';
import { asciiJson, quote } from './escape.js';

/** A line of the log as tail shows it: the entry, or why it could not be read. */
export interface TailLine {
  readonly file: string;
  readonly line: number;
  readonly entry: AuditEntry | null;
  /** The raw text when the line is not a valid entry. */
  readonly raw: string | null;
  readonly problem: string | null;
}

/**
 * The last `count` lines of the chain, oldest first, reading rotated files
 * as needed; with PRINCIPAL, the last of its entries (an unreadable line is
 * always shown: it may have been anyone's).
 */
export async function readTail(root: string, count: number, principal?: string): Promise<TailLine[]> {
  const files = (await chainFiles(auditLogPath(root))).reverse();
  const out: TailLine[] = [];
  for (const { path } of files) {
    if (out.length >= count) break;
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw err;
    }
    const lines = text.split('\n');
    if (lines[lines.length - 1] === '') lines.pop();
    const taken: TailLine[] = [];
    for (let i = lines.length - 1; i >= 0 && out.length + taken.length < count; i--) {
      const line = lines[i] as string;
      const parsed = parseLine(line);
      if (principal !== undefined && 'entry' in parsed && parsed.entry.principal !== principal) continue;
      taken.unshift('entry' in parsed
        ? { file: path, line: i + 1, entry: parsed.entry, raw: null, problem: null }
        : { file: path, line: i + 1, entry: null, raw: line, problem: parsed.problem });
    }
    out.unshift(...taken);
  }
  return out;
}

function list(values: readonly string[]): string {
  return `[${values.map(quote).join(',')}]`;
}

/** One line of text per entry; every agent-supplied string is quoted and escaped. */
export function formatTailLine(t: TailLine): string {
  const e = t.entry;
  if (!e) return `?? ${quote(t.file)}:${t.line} unreadable (${t.problem}): ${quote(t.raw ?? '')}`;
  return [
    `#${e.seq}`, e.time, e.kind,
    `principal=${quote(e.principal)}`,
    `op=${quote(e.operation)}`,
    `qubes=${list(e.qubes)}`,
    `keys=${list(e.keys)}`,
    `result=${e.result ?? '-'}`,
    `detail=${e.detail === null ? '-' : quote(e.detail)}`,
    `corr=${quote(e.correlation)}`,
    ...(e.truncated ? ['truncated'] : []),
    ...(e.count === undefined ? [] : [`count=${e.count}`]),
  ].join(' ');
}

/** One JSON document per entry, ASCII only. */
export function formatTailJson(t: TailLine): string {
  return asciiJson(t.entry ? t.entry : { file: t.file, line: t.line, unreadable: t.problem, raw: t.raw });
}
