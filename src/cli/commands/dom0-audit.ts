import { parseArgs } from 'node:util';
import type { ParseArgsConfig } from 'node:util';
import type { Command } from '../command.js';
import { UsageError } from '../command.js';
import type { AuditReport } from '../../dom0/audit/index.js';
import { asciiJson, fileWitness, formatTailJson, formatTailLine, quote, readTail, verifyAudit } from '../../dom0/audit/index.js';

const DEFAULT_TAIL = 20;
const MAX_TAIL = 100_000;

function parse(args: string[], options: NonNullable<ParseArgsConfig['options']>): Record<string, unknown> {
  try {
    const { values, positionals } = parseArgs({ args, options, allowPositionals: true, strict: true });
    if (positionals.length > 0) throw new UsageError(`unexpected argument: ${positionals[0]}`);
    return values;
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError((err as Error).message);
  }
}

function write(text: string): void {
  process.stdout.write(text + '\n');
}

function printReport(report: AuditReport): void {
  const where = (p: AuditReport['problems'][number]): string =>
    `${quote(p.file)}${p.line === null ? '' : `:${p.line}`}${p.seq === null ? '' : ` seq ${p.seq}`}`;
  write(report.valid ? 'audit log: chain valid' : 'audit log: chain BROKEN');
  write(`  entries ${report.entries} in ${report.files.length} file(s); head ${report.head ? `seq ${report.head.seq} ${report.head.hash}` : 'none'}`);
  write(`  witness ${report.witnessed ? `seq ${report.witnessed.seq} ${report.witnessed.hash}` : 'none'}`);
  for (const p of report.problems) write(`  problem: ${where(p)}: ${p.what}`);
  for (const n of report.notes) write(`  note: ${n}`);
}

export const auditVerifyCommand: Command = {
  path: ['dom0', 'audit', 'verify'],
  summary: 'check the audit log chain and its witnessed head',
  async run(args) {
    const values = parse(args, {
      root: { type: 'string' },
      witness: { type: 'string' },
      json: { type: 'boolean' },
    });
    const root = typeof values['root'] === 'string' ? values['root'] : '/';
    const witnessPath = values['witness'];
    const report = await verifyAudit({
      root,
      ...(typeof witnessPath === 'string' ? { witness: fileWitness(witnessPath) } : {}),
    });
    if (values['json'] === true) write(asciiJson(report));
    else printReport(report);
    return report.valid ? 0 : 1;
  },
};

export const auditTailCommand: Command = {
  path: ['dom0', 'audit', 'tail'],
  summary: 'show the last audit entries, escaped',
  async run(args) {
    const values = parse(args, {
      root: { type: 'string' },
      lines: { type: 'string', short: 'n' },
      json: { type: 'boolean' },
    });
    const root = typeof values['root'] === 'string' ? values['root'] : '/';
    const text = typeof values['lines'] === 'string' ? values['lines'] : String(DEFAULT_TAIL);
    if (!/^[0-9]{1,6}$/.test(text) || Number(text) > MAX_TAIL) throw new UsageError(`-n wants a count from 0 to ${MAX_TAIL}`);
    const lines = await readTail(root, Number(text));
    for (const line of lines) write(values['json'] === true ? formatTailJson(line) : formatTailLine(line));
    return 0;
  },
};
