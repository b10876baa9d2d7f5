import { DEFAULT_QUBESD_SOCKET, parseDom0Options, type Dom0Options } from '../args.js';
import type { Command } from '../command.js';
import { UsageError } from '../command.js';
import { openAudit, quote } from '../../dom0/audit/index.js';
import { readWriteSettings } from '../../dom0/create/settings.js';
import { Qubesd } from '../../dom0/qubesd.js';
import { listTombstones, reapTombstones, restoreTombstone, TombstoneError } from '../../dom0/tombstones/operator.js';
import type { TombstoneOps } from '../../dom0/tombstones/operator.js';

const USAGE = `usage: qmcp dom0 tombstones list|restore NAME|reap [--root DIR] [--qubesd-socket PATH] [--json]

The qubes the agent removed, kept as tombstones (docs/dom0.md). list shows each
with when it was removed; restore brings NAME back untiered (the umbrella
only); reap destroys the tombstones past the retention period, skipping
any a veto holds (still in the umbrella, running, undatable). The settings
are read under DIR (default /), qubesd at PATH (default ${DEFAULT_QUBESD_SOCKET}).
Exit 0 done, 1 refused (not a tombstone, retention unreadable), 2 usage.`;

function ops(p: Dom0Options): TombstoneOps {
  const warn = (m: string): void => {
    process.stderr.write(`qmcp: ${m}\n`);
  };
  return {
    qubesd: new Qubesd(p.socket),
    settings: readWriteSettings(p.root, warn),
    audit: openAudit({ root: p.root }),
  };
}

function out(text: string): void {
  process.stdout.write(text + '\n');
}

export const tombstonesCommand: Command = {
  path: ['dom0', 'tombstones'],
  summary: 'list, restore or reap the qubes the agent removed (list | restore NAME | reap)',
  usage: USAGE,
  async run(args) {
    const p = parseDom0Options(args, USAGE);
    const [verb, ...rest] = p.positionals;
    if (verb === 'list' && rest.length === 0) {
      const list = await listTombstones(new Qubesd(p.socket));
      if (p.json) out(JSON.stringify(list.map(({ name, klass, state, since }) => ({ name, klass, state, since }))));
      else if (list.length === 0) out('no tombstones');
      else for (const t of list) out(`${quote(t.name)}  ${t.klass}  ${t.state}  since ${t.since ?? 'UNDATABLE'}`);
      return 0;
    }
    if (verb === 'restore' && rest.length === 1) {
      const name = rest[0] as string;
      try {
        await restoreTombstone(ops(p), name);
      } catch (err) {
        if (!(err instanceof TombstoneError)) throw err;
        if (p.json) out(JSON.stringify({ refused: err.message }));
        process.stderr.write(`qmcp: refused: ${err.message}\n`);
        return 1;
      }
      out(p.json ? JSON.stringify({ restored: name }) : `restored ${quote(name)} (untiered: umbrella only)`);
      return 0;
    }
    if (verb === 'reap' && rest.length === 0) {
      const result = await reapTombstones(ops(p), new Date());
      if (p.json) out(JSON.stringify(result));
      else {
        if (result.refused) out(`reap refused: ${result.refused}`);
        for (const n of result.reaped) out(`reaped ${quote(n)}`);
        for (const k of result.kept) out(`kept ${quote(k.name)}: ${k.reason}`);
      }
      return result.refused ? 1 : 0;
    }
    throw new UsageError(USAGE);
  },
};
