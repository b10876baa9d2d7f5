import { DEFAULT_QUBESD_SOCKET, installedPrincipals, parseDom0Options, principalFor, principalsFor, type Dom0Options } from '../args.js';
import type { Command } from '../command.js';
import { UsageError } from '../command.js';
import { openAudit, quote } from '../../dom0/audit/index.js';
import { readWorlds, type World } from '../../dom0/create/settings.js';
import { acquireBudgetLock } from '../../dom0/create/lock.js';
import { Qubesd } from '../../dom0/qubesd.js';
import { listOrphans, listTombstones, orphanKept, orphanReason, reapOrphan, reapTombstones, restoreTombstone, TombstoneError } from '../../dom0/tombstones/operator.js';
import type { ReapOps, ReapResult } from '../../dom0/tombstones/operator.js';

const USAGE = `usage: qmcp dom0 tombstones list|restore NAME|reap [NAME] [--principal NAME] [--root DIR] [--qubesd-socket PATH] [--json]

The qubes the agent removed, kept as tombstones (docs/dom0.md). list shows each
with when it was removed; restore brings NAME back untiered (the umbrella
only); reap destroys the tombstones past the retention period, skipping
any a veto holds (still in the umbrella, running, undatable). With several
principals, list and reap cover each principal's tombstones (those carrying
its owner tag) with its own retention, or --principal's alone, and restore
needs --principal: the tombstone must be that principal's.
An orphan is a tombstone of a removed principal (docs/principals.md): list
shows it marked so, reap keeps it (no retention governs it), restore NAME
brings it back into --principal's world, re-owned by that principal, and
reap NAME destroys it (halted, in no umbrella). The settings are read under
DIR (default /), qubesd at PATH (default ${DEFAULT_QUBESD_SOCKET}).
Exit 0 done, 1 refused (not a tombstone, retention unreadable, an orphan kept), 2 usage.`;

function warn(m: string): void {
  process.stderr.write(`qmcp: ${m}\n`);
}

/** The worlds a command covers: --principal's, or each (PRINCIPAL: the one a restore is about). */
function worlds(p: Dom0Options, principal?: string): World[] {
  return readWorlds(p.root, warn, principal !== undefined ? [principal] : p.principal !== undefined ? principalsFor(p) : undefined);
}

/** How long a command waits for a create, remove or reap under way. */
const LOCK_WAIT_MS = 30_000;

function ops(p: Dom0Options, w: World): ReapOps {
  const principal = w.principal === null ? {} : { principal: w.principal };
  const lock = () => acquireBudgetLock(p.root, LOCK_WAIT_MS);
  return { qubesd: new Qubesd(p.socket), settings: w.settings, audit: openAudit({ root: p.root }), principals: installedPrincipals(p.root), lock, ...principal, ...(w.owner ? { owner: w.owner } : {}) };
}

/** The orphans a command about the whole machine covers: none with --principal, or when the settings name no principal. */
async function orphans(p: Dom0Options): ReturnType<typeof listOrphans> {
  const principals = installedPrincipals(p.root);
  return p.principal !== undefined || principals.length === 0 ? [] : listOrphans(new Qubesd(p.socket), principals);
}

/** With several principals, whose world a line is about. */
function whose(w: World): string {
  return w.owner ? `${quote(w.principal ?? '')}: ` : '';
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
      const list = [];
      const principals = installedPrincipals(p.root);
      for (const w of worlds(p)) {
        for (const t of await listTombstones(new Qubesd(p.socket), w.owner)) if (orphanReason(t.tags, principals) === null) list.push({ w, t });
      }
      const lost = await orphans(p);
      if (p.json) {
        const rows = list.map(({ w, t: { name, klass, state, since } }) => ({ ...(w.owner ? { principal: w.principal } : {}), name, klass, state, since }));
        out(JSON.stringify([...rows, ...lost.map(({ name, klass, state, since, reason }) => ({ orphan: reason, name, klass, state, since }))]));
      } else if (list.length + lost.length === 0) out('no tombstones');
      else {
        for (const { w, t } of list) out(`${whose(w)}${quote(t.name)}  ${t.klass}  ${t.state}  since ${t.since ?? 'UNDATABLE'}`);
        for (const t of lost) out(`orphan (${t.reason}): ${quote(t.name)}  ${t.klass}  ${t.state}  since ${t.since ?? 'UNDATABLE'}`);
      }
      return 0;
    }
    if (verb === 'restore' && rest.length === 1) {
      const name = rest[0] as string;
      const [w] = worlds(p, principalFor(p));
      try {
        await restoreTombstone(ops(p, w as World), name);
      } catch (err) {
        if (!(err instanceof TombstoneError)) throw err;
        if (p.json) out(JSON.stringify({ refused: err.message }));
        process.stderr.write(`qmcp: refused: ${err.message}\n`);
        return 1;
      }
      out(p.json ? JSON.stringify({ restored: name }) : `restored ${quote(name)} (untiered: umbrella only)`);
      return 0;
    }
    if (verb === 'reap' && rest.length === 1) {
      const name = rest[0] as string;
      // an orphan is no principal's: any world's handles serve, and every umbrella vetoes
      const all = worlds(p);
      const result = await reapOrphan(ops(p, all[0] as World), name, all.map((x) => x.settings.scope.umbrella));
      if (p.json) out(JSON.stringify(result));
      for (const n of result.reaped) if (!p.json) out(`reaped ${quote(n)}`);
      for (const k of result.kept) if (!p.json) out(`kept ${quote(k.name)}: ${k.reason}`);
      return result.reaped.length === 1 ? 0 : 1;
    }
    if (verb === 'reap' && rest.length === 0) {
      let refused = false;
      const results: (ReapResult & { principal?: string | null })[] = [];
      for (const w of worlds(p)) {
        const result = await reapTombstones(ops(p, w), new Date());
        refused ||= result.refused !== undefined;
        results.push({ ...(w.owner ? { principal: w.principal } : {}), ...result });
        if (p.json) continue;
        if (result.refused) out(`${whose(w)}reap refused: ${result.refused}`);
        for (const n of result.reaped) out(`${whose(w)}reaped ${quote(n)}`);
        for (const k of result.kept) out(`${whose(w)}kept ${quote(k.name)}: ${k.reason}`);
      }
      const kept = (await orphans(p)).map(({ name, reason }) => ({ name, reason }));
      if (!p.json) for (const o of kept) out(orphanKept(quote(o.name), o.reason));
      // as before there were orphans: a single world's object, or one entry per world
      const [only] = results;
      if (only && results.length === 1 && !only.principal) results[0] = { ...only, kept: [...only.kept, ...kept] };
      else if (kept.length > 0) results.push({ principal: null, reaped: [], kept });
      if (p.json) out(JSON.stringify(results.length === 1 && !results[0]?.principal ? results[0] : results));
      return refused ? 1 : 0;
    }
    throw new UsageError(USAGE);
  },
};
