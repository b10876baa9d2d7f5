/** `qmcp dom0 uninstall`: removes what install's manifest lists, restores what it replaced. */
import { resolve } from 'node:path';
import type { Command } from '../command.js';
import { UsageError } from '../command.js';
import { parseCli } from '../args.js';
import { UninstallError, uninstallDom0 } from '../../dom0/install/uninstall.js';

const USAGE = `usage: qmcp dom0 uninstall --root DIR [--dry-run] [--json] [--qubesd-socket PATH (accepted; not needed)]

Removes exactly the files and links install's manifest lists under DIR
(/ on a real dom0, where the reaper timer is also stopped and disabled),
puts back the files install replaced, and removes the directories it
created once empty. Qubes, their tags, tombstones and a used audit log are
left alone, and the output says so. A file edited since install is removed
with a copy kept under var/lib/qmcp/uninstall-saved. --dry-run says what
would happen. Exit 0 done, 1 refused or incomplete, 2 usage.`;

export const dom0UninstallCommand: Command = {
  path: ['dom0', 'uninstall'],
  summary: 'remove exactly what install wrote and restore what it replaced',
  usage: USAGE,
  async run(argv: string[]): Promise<number> {
    const { values, positionals } = parseCli(
      argv,
      { root: { type: 'string' }, 'qubesd-socket': { type: 'string' }, 'dry-run': { type: 'boolean' }, json: { type: 'boolean' } },
      USAGE,
    );
    if (positionals.length > 0) throw new UsageError(`unexpected argument: ${positionals[0]}\n${USAGE}`);
    if (!values.root) throw new UsageError(`--root DIR is required (use --root / on a real dom0)\n${USAGE}`);
    try {
      const r = await uninstallDom0({ root: resolve(values.root), dryRun: values['dry-run'] ?? false });
      if (values.json) process.stdout.write(JSON.stringify(r) + '\n');
      else {
        const would = r.dryRun ? 'would ' : '';
        for (const p of r.removed) console.log(`${would}remove: ${p}`);
        for (const p of r.restored) console.log(`${would}restore: ${p}`);
        for (const s of r.saved) console.log(`${s.path} was edited since install: ${would}keep a copy at ${s.copy}`);
        for (const p of r.missing) console.log(`already gone: ${p}`);
        for (const k of r.kept) console.log(`left alone: ${k}`);
        for (const p of r.problems) console.error(`qmcp dom0 uninstall: ${p}`);
        console.log(`${r.root}: ${r.removed.length} removed, ${r.restored.length} restored${r.dryRun ? ' (dry run: nothing changed)' : ''}`);
      }
      return r.problems.length ? 1 : 0;
    } catch (err) {
      if (!(err instanceof UninstallError)) throw err;
      if (values.json) process.stdout.write(JSON.stringify({ refused: err.message }) + '\n');
      console.error(`qmcp dom0 uninstall: refused: ${err.message}`);
      return 1;
    }
  },
};
