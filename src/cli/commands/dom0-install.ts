/** `qmcp dom0 install --root DIR [--dry-run] [--settings FILE] [--qubesd-socket PATH]`. */
import { resolve } from 'node:path';
import type { Command } from '../command.js';
import { UsageError } from '../command.js';
import { InstallError, installDom0 } from '../../dom0/install/index.js';
import type { InstallOptions } from '../../dom0/install/index.js';

function parseArgs(args: string[]): InstallOptions {
  let root: string | undefined;
  let settingsFile: string | undefined;
  let qubesdSocket: string | undefined;
  let dryRun = false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    const value = (): string => {
      const v = args[++i];
      if (v === undefined || v === '') throw new UsageError(`${a} needs a value`);
      return v;
    };
    const eq = a.indexOf('=');
    const [flag, inline] = a.startsWith('--') && eq > 0 ? [a.slice(0, eq), a.slice(eq + 1)] : [a, undefined];
    const take = (): string => inline ?? value();
    if (flag === '--root') root = take();
    else if (flag === '--settings') settingsFile = take();
    else if (flag === '--qubesd-socket') qubesdSocket = take();
    else if (a === '--dry-run') dryRun = true;
    else throw new UsageError(`unknown argument: ${a}`);
  }
  if (!root) throw new UsageError('--root DIR is required (use --root / on a real dom0)');
  return {
    root: resolve(root),
    dryRun,
    ...(settingsFile ? { settingsFile: resolve(settingsFile) } : {}),
    ...(qubesdSocket ? { qubesdSocket } : {}),
  };
}

export const dom0InstallCommand: Command = {
  path: ['dom0', 'install'],
  summary: 'install the qmcp policy, dom0 services and settings into ROOT',
  async run(argv: string[]): Promise<number> {
    const opts = parseArgs(argv);
    try {
      const report = await installDom0(opts);
      for (const w of report.warnings) console.error(`qmcp dom0 install: settings: ${w}`);
      const changed = report.files.filter((f) => f.status !== 'unchanged');
      const verb = report.dryRun ? 'would write' : 'wrote';
      for (const f of changed) console.log(`${verb} ${f.status === 'new' ? 'new' : 'changed'}: ${f.path}`);
      for (const p of report.removed) console.log(`${report.dryRun ? 'would remove' : 'removed'}: ${p}`);
      for (const b of report.backups) console.log(`backup: ${b}`);
      console.log(
        `${report.root}: ${changed.length} file(s) ${report.dryRun ? 'to change' : 'changed'}, ${report.files.length - changed.length} unchanged`,
      );
      return 0;
    } catch (err) {
      if (err instanceof InstallError) {
        console.error(`qmcp dom0 install: ${err.message}`);
        return 1;
      }
      throw err;
    }
  },
};
