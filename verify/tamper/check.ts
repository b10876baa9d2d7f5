/**
 * Audit tampering (SPEC §4.12): a real log with rotated files and a file
 * witness is written once; then each generated case copies it, applies one
 * edit, deletion, insertion, reordering, truncation, file swap or witness
 * edit at generated positions, and asks `verifyAudit` whether the chain
 * holds. Every case must be found. Moving a line across a file boundary
 * keeps the chain's content and is not tampering; rewriting both the log
 * and the witness is the documented residual (it needs dom0).
 */
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { fileWitness, openAudit, verifyAudit } from '../../src/dom0/audit/index.js';
import type { AuditEntry, AuditReport, VerifyOptions } from '../../src/dom0/audit/index.js';
import { hashOf, lineOf, parseLine } from '../../src/dom0/audit/entry.js';
import type { Budget, Check, CheckReport, Failure } from '../check.js';

const NAME = 'tamper';
const LOG_DIR = join('var', 'log', 'qmcp');
const WITNESS = join('var', 'lib', 'qmcp', 'audit-witness');

export interface TamperSut {
  /** The verifier under test; default: the real verifyAudit with the file witness. */
  readonly verify?: (opts: VerifyOptions) => Promise<AuditReport>;
}

/** One tampering, with positions as raw numbers taken modulo what exists. */
export type Tamper =
  | { readonly kind: 'byte edit'; readonly file: number; readonly line: number; readonly at: number; readonly char: string }
  | { readonly kind: 'forged field'; readonly file: number; readonly line: number; readonly field: 'result' | 'qubes' | 'principal' | 'kind' | 'time' }
  | { readonly kind: 'rechained from'; readonly file: number; readonly line: number }
  | { readonly kind: 'deleted lines'; readonly file: number; readonly line: number; readonly count: number }
  | { readonly kind: 'inserted forged line'; readonly file: number; readonly line: number }
  | { readonly kind: 'replayed line'; readonly file: number; readonly line: number; readonly to: number }
  | { readonly kind: 'swapped lines'; readonly file: number; readonly line: number; readonly other: number }
  | { readonly kind: 'moved line'; readonly file: number; readonly line: number; readonly to: number }
  | { readonly kind: 'truncated tail'; readonly count: number }
  | { readonly kind: 'truncated inside a line'; readonly bytes: number }
  | { readonly kind: 'truncated rotated file'; readonly file: number; readonly count: number }
  | { readonly kind: 'deleted rotated file'; readonly file: number }
  | { readonly kind: 'swapped rotated files'; readonly file: number; readonly other: number }
  | { readonly kind: 'fresh forged log' }
  | { readonly kind: 'emptied log' }
  | { readonly kind: 'witness head edited'; readonly head: number }
  | { readonly kind: 'witness deleted' }
  | { readonly kind: 'witness unreadable' };

const nat = fc.nat({ max: 10_000 });
export const tamperArbitrary: fc.Arbitrary<Tamper> = fc.oneof(
  fc.record({ kind: fc.constant('byte edit' as const), file: nat, line: nat, at: nat, char: fc.constantFrom('0', 'a', 'f', '"', '}', ' ', 'x', '9', '\\') }),
  fc.record({ kind: fc.constant('forged field' as const), file: nat, line: nat, field: fc.constantFrom('result' as const, 'qubes' as const, 'principal' as const, 'kind' as const, 'time' as const) }),
  fc.record({ kind: fc.constant('rechained from' as const), file: nat, line: nat }),
  fc.record({ kind: fc.constant('deleted lines' as const), file: nat, line: nat, count: fc.integer({ min: 1, max: 5 }) }),
  fc.record({ kind: fc.constant('inserted forged line' as const), file: nat, line: nat }),
  fc.record({ kind: fc.constant('replayed line' as const), file: nat, line: nat, to: nat }),
  fc.record({ kind: fc.constant('swapped lines' as const), file: nat, line: nat, other: nat }),
  fc.record({ kind: fc.constant('moved line' as const), file: nat, line: nat, to: nat }),
  fc.record({ kind: fc.constant('truncated tail' as const), count: fc.integer({ min: 1, max: 8 }) }),
  fc.record({ kind: fc.constant('truncated inside a line' as const), bytes: fc.integer({ min: 1, max: 400 }) }),
  fc.record({ kind: fc.constant('truncated rotated file' as const), file: nat, count: fc.integer({ min: 1, max: 5 }) }),
  fc.record({ kind: fc.constant('deleted rotated file' as const), file: nat }),
  fc.record({ kind: fc.constant('swapped rotated files' as const), file: nat, other: nat }),
  fc.constant({ kind: 'fresh forged log' as const }),
  fc.constant({ kind: 'emptied log' as const }),
  fc.record({ kind: fc.constant('witness head edited' as const), head: nat }),
  fc.constant({ kind: 'witness deleted' as const }),
  fc.constant({ kind: 'witness unreadable' as const }),
);

/** The chain's files, oldest first: audit.log.1, .2, …, then audit.log. */
function chainFiles(root: string): string[] {
  const dir = join(root, LOG_DIR);
  const rotated = readdirSync(dir)
    .map((n) => /^audit\.log\.([0-9]+)$/.exec(n))
    .filter((m): m is RegExpExecArray => m !== null)
    .sort((a, b) => Number(a[1]) - Number(b[1]))
    .map((m) => join(dir, m[0]));
  return [...rotated, join(dir, 'audit.log')];
}

function readLines(path: string): string[] {
  const text = readFileSync(path, 'utf8');
  return text === '' ? [] : text.replace(/\n$/, '').split('\n');
}

function writeLines(path: string, lines: string[]): void {
  writeFileSync(path, lines.length ? lines.join('\n') + '\n' : '');
}

function entryOf(line: string): AuditEntry {
  const p = parseLine(line);
  if (!('entry' in p)) throw new Error(`base log line unreadable: ${p.problem}`);
  return p.entry;
}

function forge(e: AuditEntry, change: Partial<AuditEntry>): AuditEntry {
  const f = { ...e, ...change };
  return { ...f, hash: hashOf(f) };
}

const FORGED: Record<string, Partial<AuditEntry>> = {
  result: { result: 'ok', kind: 'outcome' },
  qubes: { qubes: ['ai-forged'] },
  principal: { principal: 'sys-net' },
  kind: { kind: 'operator', result: 'ok' },
  time: { time: '2000-01-01T00:00:00.000Z' },
};

/** Applies a tampering to the copy at `root`; false when it would change nothing (then the case is skipped). */
function apply(root: string, t: Tamper): boolean {
  const files = chainFiles(root);
  const live = files[files.length - 1] as string;
  const rotated = files.slice(0, -1);
  const pickFile = (n: number): string => files[n % files.length] as string;
  const edit = (n: number, fn: (lines: string[]) => string[] | null): boolean => {
    const path = pickFile(n);
    const lines = readLines(path);
    if (lines.length === 0) return false;
    const next = fn(lines);
    if (!next) return false;
    writeLines(path, next);
    return true;
  };
  switch (t.kind) {
    case 'byte edit':
      return edit(t.file, (lines) => {
        const i = t.line % lines.length;
        const line = lines[i] as string;
        const at = t.at % line.length;
        if (line[at] === t.char) return null;
        lines[i] = line.slice(0, at) + t.char + line.slice(at + 1);
        return lines;
      });
    case 'forged field':
      return edit(t.file, (lines) => {
        const i = t.line % lines.length;
        const e = entryOf(lines[i] as string);
        const f = forge(e, FORGED[t.field] ?? {});
        if (f.hash === e.hash) return null;
        lines[i] = lineOf(f);
        return lines;
      });
    case 'rechained from': {
      // A forger who rewrites one entry and every entry after it, links and all.
      const start = t.file % files.length;
      let prev: string | null = null;
      let changed = false;
      for (let fi = start; fi < files.length; fi++) {
        const path = files[fi] as string;
        const lines = readLines(path);
        const from = fi === start ? (lines.length ? t.line % lines.length : 0) : 0;
        for (let i = from; i < lines.length; i++) {
          const e = entryOf(lines[i] as string);
          const f = forge(e, { ...(changed ? {} : { qubes: ['ai-forged'] }), ...(prev ? { prev } : {}) });
          changed ||= f.hash !== e.hash;
          prev = f.hash;
          lines[i] = lineOf(f);
        }
        writeLines(path, lines);
      }
      return changed;
    }
    case 'deleted lines':
      return edit(t.file, (lines) => {
        const i = t.line % lines.length;
        lines.splice(i, t.count);
        return lines;
      });
    case 'inserted forged line':
      return edit(t.file, (lines) => {
        const i = t.line % lines.length;
        const before = entryOf(lines[i] as string);
        lines.splice(i + 1, 0, lineOf(forge(before, { seq: before.seq + 1, prev: before.hash, kind: 'refusal', result: 'refused', qubes: ['vault'] })));
        return lines;
      });
    case 'replayed line':
      return edit(t.file, (lines) => {
        const i = t.line % lines.length;
        lines.splice(t.to % (lines.length + 1), 0, lines[i] as string);
        return lines;
      });
    case 'swapped lines':
      return edit(t.file, (lines) => {
        const i = t.line % lines.length;
        const j = t.other % lines.length;
        if (i === j) return null;
        [lines[i], lines[j]] = [lines[j] as string, lines[i] as string];
        return lines;
      });
    case 'moved line':
      return edit(t.file, (lines) => {
        const i = t.line % lines.length;
        const [l] = lines.splice(i, 1);
        const j = t.to % (lines.length + 1);
        if (j === i) return null;
        lines.splice(j, 0, l as string);
        return lines;
      });
    case 'truncated tail': {
      const lines = readLines(live);
      if (lines.length === 0) return false;
      writeLines(live, lines.slice(0, Math.max(0, lines.length - t.count)));
      return true;
    }
    case 'truncated inside a line': {
      const text = readFileSync(live);
      if (text.length === 0) return false;
      writeFileSync(live, text.subarray(0, Math.max(0, text.length - t.bytes)));
      return true;
    }
    case 'truncated rotated file': {
      if (rotated.length === 0) return false;
      const path = rotated[t.file % rotated.length] as string;
      const lines = readLines(path);
      writeLines(path, lines.slice(0, Math.max(0, lines.length - t.count)));
      return lines.length > 0;
    }
    case 'deleted rotated file':
      if (rotated.length === 0) return false;
      unlinkSync(rotated[t.file % rotated.length] as string);
      return true;
    case 'swapped rotated files': {
      if (rotated.length < 2) return false;
      const a = rotated[t.file % rotated.length] as string;
      const b = rotated[t.other % rotated.length] as string;
      if (a === b) return false;
      renameSync(a, `${a}.tmp`);
      renameSync(b, a);
      renameSync(`${a}.tmp`, b);
      return true;
    }
    case 'fresh forged log': {
      // A self-consistent chain from genesis, as long as the real one, in place of every file.
      let prev = '0'.repeat(64);
      const all = files.flatMap((f) => readLines(f).map(entryOf));
      for (const f of rotated) unlinkSync(f);
      writeLines(
        live,
        all.map((e) => {
          const f = forge(e, { qubes: ['vault'], prev });
          prev = f.hash;
          return lineOf(f);
        }),
      );
      return true;
    }
    case 'emptied log':
      for (const f of rotated) unlinkSync(f);
      writeFileSync(live, '');
      return true;
    case 'witness head edited': {
      const path = join(root, WITNESS);
      const lines = readLines(path);
      if (lines.length === 0) return false;
      const i = t.head % lines.length;
      lines[i] = (lines[i] as string).replace(/hash=([0-9a-f])/, (_m, c: string) => `hash=${c === '0' ? '1' : '0'}`);
      writeLines(path, lines);
      return true;
    }
    case 'witness deleted':
      unlinkSync(join(root, WITNESS));
      return true;
    case 'witness unreadable':
      unlinkSync(join(root, WITNESS));
      mkdirSync(join(root, WITNESS));
      return true;
  }
}

/**
 * An entry forged onto the end of the chain links correctly; only the
 * witness can tell, and verify reports entries past the last witnessed head
 * as a note (a witness that failed to record does not refuse calls). The
 * check counts that note as detection and reports how often it was the only one.
 */
function lagNote(r: AuditReport): boolean {
  return r.notes.some((n) => /after the last witnessed head/.test(n));
}

/** Writes a log of `entries` appends (every kind) across rotated files, with a file witness. */
async function baseLog(root: string, entries: number): Promise<void> {
  mkdirSync(join(root, LOG_DIR), { recursive: true });
  mkdirSync(join(root, 'var', 'lib', 'qmcp'), { recursive: true });
  writeFileSync(join(root, LOG_DIR, 'audit.log'), '');
  const audit = openAudit({ root, witness: fileWitness(join(root, WITNESS)), maxFileBytes: 2048 });
  for (let i = 0; i < entries; i++) {
    const qubes = [`ai-q${i % 7}`];
    switch (i % 4) {
      case 0: {
        const c = await audit.intent({ principal: 'mcp-control', operation: 'create', qubes });
        await audit.outcome(c, { result: i % 8 === 0 ? 'ok' : 'failed', detail: i % 8 === 0 ? undefined : 'QubesException' });
        i++;
        break;
      }
      case 1:
      case 2:
        await audit.refusal({ principal: 'mcp-control', operation: 'start', qubes: ['vault'], detail: 'not visible' });
        break;
      default:
        await audit.operator({ principal: 'dom0', operation: 'tier', qubes, result: 'ok' });
    }
  }
}

export function makeTamperCheck(sut: TamperSut = {}): Check {
  return {
    name: NAME,
    summary: 'generated edits, deletions, insertions, reorderings and truncations of the audit log, its rotated files and witness',
    async run(budget: Budget, seed: number): Promise<CheckReport> {
      const scale = Math.max(1, budget.scale);
      const failures: Failure[] = [];
      const verify = sut.verify ?? ((o: VerifyOptions) => verifyAudit(o));
      const work = mkdtempSync(join(tmpdir(), 'qmcp-tamper-'));
      const base = join(work, 'base');
      let cases = 0;
      let noteOnly = 0;
      const perKind = new Map<string, number>();
      try {
        await baseLog(base, 40);
        const rotatedCount = chainFiles(base).length - 1;
        const verifyAt = (root: string): Promise<AuditReport> => verify({ root, witness: fileWitness(join(root, WITNESS)) });
        const clean = await verifyAt(base);
        if (!clean.valid || clean.entries < 40) {
          failures.push({ check: NAME, what: `the untampered log does not verify: ${JSON.stringify(clean.problems.slice(0, 3))}`, reproduction: `--seed ${seed} --only ${NAME}` });
        }
        let n = 0;
        const result = await fc.check(
          fc.asyncProperty(tamperArbitrary, async (t) => {
            const root = join(work, `case-${n++}`);
            cpSync(base, root, { recursive: true });
            try {
              fc.pre(apply(root, t));
              cases++;
              perKind.set(t.kind, (perKind.get(t.kind) ?? 0) + 1);
              const report = await verifyAt(root);
              if (report.valid && lagNote(report)) noteOnly++;
              return !report.valid || lagNote(report);
            } finally {
              rmSync(root, { recursive: true, force: true });
            }
          }),
          { seed, numRuns: 150 * scale, endOnFailure: false },
        );
        if (result.failed && result.counterexample) {
          failures.push({
            check: NAME,
            what: `tampering not detected: ${result.counterexample[0].kind}`,
            reproduction: `--seed ${seed} --scale ${scale} --only ${NAME}; shrunk case ${JSON.stringify(result.counterexample[0])}`,
          });
        } else if (result.failed) {
          failures.push({ check: NAME, what: `the check itself failed: ${String(result.errorInstance)}`, reproduction: `--seed ${seed} --only ${NAME}` });
        }
        const figures = [
          { label: 'tampering cases', value: String(cases) },
          { label: 'tampering classes', value: String(perKind.size) },
          { label: 'found only as entries past the witness (tail appends)', value: String(noteOnly) },
          { label: 'log files (rotated + live)', value: String(rotatedCount + 1) },
        ];
        return { figures, failures };
      } finally {
        rmSync(work, { recursive: true, force: true });
      }
    },
  };
}

export const tamperCheck = makeTamperCheck();

/** For debugging a reproduction by hand: the base log, one tampering, and the report. */
export async function tamperOnce(root: string, t: Tamper): Promise<{ applied: boolean; report: AuditReport }> {
  await baseLog(root, 40);
  const applied = apply(root, t);
  return { applied, report: await verifyAudit({ root, witness: fileWitness(join(root, WITNESS)) }) };
}
