/** `qmcp dom0 leases`: the qubes that expire, and the reaper's lease step run by hand. */
import { DEFAULT_QUBESD_SOCKET, parseDom0Options, principalsFor } from '../args.js';
import type { Command } from '../command.js';
import { UsageError } from '../command.js';
import { openAudit, quote } from '../../dom0/audit/index.js';
import { acquireBudgetLock } from '../../dom0/create/lock.js';
import { readWorlds } from '../../dom0/create/settings.js';
import { expireLeases, expiryLines, leased } from '../../dom0/leases/expire.js';
import { Qubesd } from '../../dom0/qubesd.js';
import { parseExpiry } from '../../shared/model/lease.js';

const USAGE = `usage: qmcp dom0 leases list|expire [--now TIME] [--principal NAME] [--root DIR] [--qubesd-socket PATH] [--json]

The qubes the agent created carry a lease (docs/dom0.md). list shows each
qube with an expiry and whether it is over at TIME; expire runs what the
reaper timer runs for leases: every qube whose lease is over at TIME ends as
a remove would, kept as a tombstone (qmcp dom0 tombstones restores it).
TIME is an ISO time to the second (2030-01-01T00:00:00Z), default now: a
later one shows, or ends, what will have lapsed by then (on the simulated
host, how to watch a lease run out). With several principals both cover
each principal's world with its own settings, or NAME's alone; a line
names the principal. The settings are read under DIR
(default /), qubesd at PATH (default ${DEFAULT_QUBESD_SOCKET}).
Exit 0 done, 1 refused (settings unusable: nothing expired), 2 usage.`;

const LOCK_WAIT_MS = 30_000;

function out(text: string): void {
  process.stdout.write(text + '\n');
}

export const leasesCommand: Command = {
  path: ['dom0', 'leases'],
  summary: 'list the qubes that expire, or end those whose lease is over (list | expire [--now TIME])',
  usage: USAGE,
  async run(args) {
    const p = parseDom0Options(args, USAGE, { now: { type: 'string' } });
    const { root, json, positionals, extra } = p;
    const qubesd = new Qubesd(p.socket);
    const now = extra.now === undefined ? new Date() : parseExpiry(extra.now);
    if (now === null) throw new UsageError(`--now wants an ISO time to the second, such as 2030-01-01T00:00:00Z\n${USAGE}`);
    const [verb, ...rest] = positionals;
    if (rest.length > 0) throw new UsageError(USAGE);
    const warn = (m: string): void => {
      process.stderr.write(`qmcp: ${m}\n`);
    };
    const worlds = readWorlds(root, warn, p.principal === undefined ? undefined : principalsFor(p));
    // with several principals, each line and entry names whose world it is
    const whose = (w: (typeof worlds)[number]): string => (w.owner ? `${quote(w.principal ?? '')}: ` : '');
    const named = (w: (typeof worlds)[number]): { principal?: string } => (w.owner && w.principal ? { principal: w.principal } : {});
    if (verb === 'list') {
      const list = [];
      for (const w of worlds) {
        for (const q of await leased(qubesd, w.owner)) list.push({ ...named(w), name: q.name, expires: q.expires, over: (parseExpiry(q.expires)?.getTime() ?? 0) <= now.getTime(), whose: whose(w) });
      }
      if (json) out(JSON.stringify(list.map(({ whose: _, ...q }) => q)));
      else if (list.length === 0) out('no leases');
      else for (const q of list) out(`${q.whose}${quote(q.name)}  expires ${quote(q.expires)}${q.over ? '  (over)' : ''}`);
      return 0;
    }
    if (verb === 'expire') {
      let refused = false;
      const results = [];
      for (const w of worlds) {
        const ops = { qubesd, settings: w.settings, audit: openAudit({ root }), lock: () => acquireBudgetLock(root, LOCK_WAIT_MS), operator: 'dom0', ...(w.owner ? { owner: w.owner } : {}) };
        const result = await expireLeases(ops, now);
        refused ||= result.refused !== undefined;
        results.push({ ...named(w), ...result });
        if (!json) for (const line of expiryLines(result, quote)) out(`${whose(w)}${line}`);
      }
      if (json) out(JSON.stringify(worlds[0]?.owner ? results : results[0]));
      return refused ? 1 : 0;
    }
    throw new UsageError(USAGE);
  },
};
