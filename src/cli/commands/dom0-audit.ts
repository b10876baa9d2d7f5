import { parseArgs } from 'node:util';
import type { ParseArgsConfig } from 'node:util';
import type { Command } from '../command.js';
import { UsageError } from '../command.js';
import type { AuditReport } from '../../dom0/audit/index.js';
import { asciiJson, fileWitness, formatTailJson, formatTailLine, quote, readTail, verifyAudit } from '../../dom0/audit/index.js';

const DEFAULT_TAIL = 20;
const MAX_TAIL = 100_000;

const VERIFY_USAGE = `usage: qmcp dom0 audit verify [--root DIR] [--witness FILE] [--json]

Checks the audit log under DIR (default /): every entry's hash and link,
seqs without a gap across rotated files, and the chain head against the
witness (the journal on a real dom0, a file under DIR otherwise), which
catches a truncated tail. Exit 0 chain valid, 1 broken, 2 usage.`;

const TAIL_USAGE = `usage: qmcp dom0 audit tail [-n COUNT] [--principal NAME] [--root DIR] [--json]

Shows the last COUNT (default ${DEFAULT_TAIL}) audit entries, agent-supplied
strings escaped; with --principal, the last of those naming NAME (and any
unreadable line). Exit 0 done, 1 log unreadable, 2 usage.`;

/** Both accept --qubesd-socket, as every operator command does, though neither needs qubesd. */
const COMMON = { root: { type: 'string' }, 'qubesd-socket': { type: 'string' }, json: { type: 'boolean' } } as const;

function parse(args: string[], options: NonNullable<ParseArgsConfig['options']>, usage: string): Record<string, unknown> {
  try {
    const { values, positionals } = parseArgs({ args, options: { ...COMMON, ...options }, allowPositionals: true, strict: true });
    if (positionals.length > 0) throw new UsageError(`unexpected argument: ${positionals[0]}\n${usage}`);
    return values;
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError(`${(err as Error).message}\n${usage}`);
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
  usage: VERIFY_USAGE,
  async run(args) {
    const values = parse(args, { witness: { type: 'string' } }, VERIFY_USAGE);
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
  usage: TAIL_USAGE,
  async run(args) {
    const values = parse(args, { lines: { type: 'string', short: 'n' }, principal: { type: 'string' } }, TAIL_USAGE);
    // any name: the log keeps entries of principals since removed, and of callers that were none
    const principal = typeof values['principal'] === 'string' ? values['principal'] : undefined;
    const root = typeof values['root'] === 'string' ? values['root'] : '/';
    const text = typeof values['lines'] === 'string' ? values['lines'] : String(DEFAULT_TAIL);
    if (!/^[0-9]{1,6}$/.test(text) || Number(text) > MAX_TAIL) throw new UsageError(`-n wants a count from 0 to ${MAX_TAIL}`);
    let lines: Awaited<ReturnType<typeof readTail>>;
    try {
      lines = await readTail(root, Number(text), principal);
    } catch (err) {
      process.stderr.write(`qmcp dom0 audit tail: cannot read the audit log: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}\n`);
      return 1;
    }
    for (const line of lines) write(values['json'] === true ? formatTailJson(line) : formatTailLine(line));
    return 0;
  },
};
