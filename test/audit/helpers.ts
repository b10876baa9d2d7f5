import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AuditLog, AuditOptions } from '../../src/dom0/audit/index.js';
import { auditLogPath, initAuditLog, openAudit } from '../../src/dom0/audit/index.js';

/** A fresh simulated root with an initialised log; remove it with `done`. */
export async function tempRoot(): Promise<{ root: string; log: string; done: () => Promise<void> }> {
  const root = await mkdtemp(join(tmpdir(), 'qmcp-audit-'));
  await initAuditLog(root);
  return { root, log: auditLogPath(root), done: () => rm(root, { recursive: true, force: true }) };
}

/** A clock that ticks one second per entry, so files are deterministic. */
export function steppingClock(): () => Date {
  let t = Date.UTC(2026, 0, 1);
  return () => new Date((t += 1000));
}

export function open(root: string, extra: Partial<AuditOptions> = {}): AuditLog {
  return openAudit({ root, clock: steppingClock(), ...extra });
}

/** Appends `count` intent/outcome pairs (2 × count entries). */
export async function fill(log: AuditLog, count: number, principal = 'mcp-control'): Promise<void> {
  for (let i = 0; i < count; i++) {
    const id = await log.intent({ principal, operation: 'qmcp.SetProperty', qubes: [`ai-${i}`], keys: ['memory'] });
    await log.outcome(id, { result: 'ok' });
  }
}

export async function readLines(path: string): Promise<string[]> {
  const text = await readFile(path, 'utf8');
  return text.split('\n').slice(0, -1);
}

export async function writeLines(path: string, lines: string[]): Promise<void> {
  await writeFile(path, lines.map((l) => l + '\n').join(''));
}
