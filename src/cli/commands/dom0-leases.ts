/** `qmcp dom0 leases`: the qubes that expire, and the reaper's lease step run by hand. */
import { DEFAULT_QUBESD_SOCKET, parseDom0Options } from '../args.js';
import type { Command } from '../command.js';
import { UsageError } from '../command.js';
import { openAudit, quote } from '../../dom0/audit/index.js';
import { acquireBudgetLock } from '../../dom0/create/lock.js';
import { readWriteSettings } from '../../dom0/create/settings.js';
import { expireLeases, expiryLines, leased } from '../../dom0/leases/expire.js';
import { Qubesd } from '../../dom0/qubesd.js';
import { parseExpiry } from '../../shared/model/lease.js';

const USAGE = `usage: qmcp dom0 leases list|expire [--now TIME] [--root DIR] [--qubesd-socket PATH] [--json]

The qubes the agent created carry a lease (docs/dom0.md). list shows each
qube with an expiry and whether it is over at TIME; expire runs what the
reaper timer runs for leases: every qube whose lease is over at TIME ends as
a remove would, kept as a tombstone (qmcp dom0 tombstones restores it).
TIME is an ISO time to the second (2030-01-01T00:00:00Z), default now: a
later one shows, or ends, what will have lapsed by then (on the simulated
host, how to watch a lease run out). The settings are read under DIR
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
    const { root, socket, json, positionals, extra } = parseDom0Options(args, USAGE, { now: { type: 'string' } });
    const qubesd = new Qubesd(socket);
    const now = extra.now === undefined ? new Date() : parseExpiry(extra.now);
    if (now === null) throw new UsageError(`--now wants an ISO time to the second, such as 2030-01-01T00:00:00Z\n${USAGE}`);
    const [verb, ...rest] = positionals;
    if (verb === 'list' && rest.length === 0) {
      const list = (await leased(qubesd)).map((q) => ({ name: q.name, expires: q.expires, over: (parseExpiry(q.expires)?.getTime() ?? 0) <= now.getTime() }));
      if (json) out(JSON.stringify(list));
      else if (list.length === 0) out('no leases');
      else for (const q of list) out(`${quote(q.name)}  expires ${quote(q.expires)}${q.over ? '  (over)' : ''}`);
      return 0;
    }
    if (verb === 'expire' && rest.length === 0) {
      const warn = (m: string): void => {
        process.stderr.write(`qmcp: ${m}\n`);
      };
      const ops = { qubesd, settings: readWriteSettings(root, warn), audit: openAudit({ root }), lock: () => acquireBudgetLock(root, LOCK_WAIT_MS), operator: 'dom0' };
      const result = await expireLeases(ops, now);
      if (json) out(JSON.stringify(result));
      else for (const line of expiryLines(result, quote)) out(line);
      return result.refused ? 1 : 0;
    }
    throw new UsageError(USAGE);
  },
};
