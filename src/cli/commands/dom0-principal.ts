/** `qmcp dom0 principal add | remove | list`: the principals of the settings file (docs/principals.md). */
import type { Command } from '../command.js';
import { UsageError } from '../command.js';
import { DEFAULT_QUBESD_SOCKET, parseDom0Options } from '../args.js';
import { openAudit } from '../../dom0/audit/index.js';
import { OperatorRefusal, isMode } from '../../dom0/operator/index.js';
import { addPrincipal, listPrincipals, removePrincipal } from '../../dom0/operator/principals.js';
import type { Disposal } from '../../dom0/operator/principals.js';

const USAGE = `usage: qmcp dom0 principal add NAME [--prefix P] [--tags BASE] [--mode compat|least-privilege] [--egress QUBE [--share-egress]]
       qmcp dom0 principal remove NAME [--entomb | --release]
       qmcp dom0 principal list
       [--root DIR] [--qubesd-socket PATH] [--json]

The principals of the settings under DIR (default /; docs/principals.md).
add makes principal qube NAME a principal with its own world: names it may
create start with P (default NAME-), its tags are BASE-managed, BASE-exec,
BASE-net, BASE-full and BASE-dump (BASE default: P without its last -), mode
least-privilege unless given, egress qube QUBE (none unless given;
--share-egress lists it as shared with the principal that has it already),
the rest as a fresh install writes it (edit the file and run qmcp dom0
install to change it). It creates no qube: it prints what to create.
remove refuses while NAME owns qubes (its owner tag, tombstones included):
--entomb makes each live one a tombstone (NAME's tombstones are then orphans,
which the reaper keeps: restore one into another principal's world or reap it
with qmcp dom0 tombstones), --release takes NAME's tags off every qube
carrying one, so they are yours. An agent's remove or restore under way ends
first; one that waited is refused. The last principal is never removed. Both rewrite the settings
(a list of one is written as a single-principal file) and install the policy
with the installer, which writes nothing when the result does not read (an
overlap with another principal's world, say). list shows each principal's
qube, prefix, umbrella, mode, how many qubes are under its umbrella and
its sink tag, and how many carry its owner tag (created or removed by its
agent, tombstones among them), through qubesd at PATH (default
${DEFAULT_QUBESD_SOCKET}). Exit 0 done, 1 refused, 2 usage.`;

const ADD = { prefix: { type: 'string' }, tags: { type: 'string' }, mode: { type: 'string' }, egress: { type: 'string' }, 'share-egress': { type: 'boolean' }, entomb: { type: 'boolean' }, release: { type: 'boolean' } } as const;

function out(text: string): void {
  process.stdout.write(text + '\n');
}

export const dom0PrincipalCommand: Command = {
  path: ['dom0', 'principal'],
  summary: 'add, remove or list the principals (add NAME | remove NAME | list)',
  usage: USAGE,
  async run(args) {
    const p = parseDom0Options(args, USAGE, ADD);
    const [verb, name, ...rest] = p.positionals;
    const x = p.extra;
    const ops = { root: p.root, socket: p.socket, audit: openAudit({ root: p.root }) };
    const addOnly = x.prefix !== undefined || x.tags !== undefined || x.mode !== undefined || x.egress !== undefined || x['share-egress'] === true;
    const removeOnly = x.entomb === true || x.release === true;
    try {
      if (verb === 'list' && name === undefined && !addOnly && !removeOnly) {
        const { rows, note } = await listPrincipals(ops);
        if (p.json) {
          out(JSON.stringify({ principals: rows, note }));
          return 0;
        }
        if (note !== null) out(`note: ${note}`);
        for (const r of rows) {
          // the umbrella counts what the agent sees; the owner tag only what its agent created or removed
          const counts = r.world === null ? 'qubes not counted' : `${r.world} qube(s) under its umbrella, ${r.sinks ?? 0} sink(s); ${r.owned ?? 0} with its owner tag (created or removed by its agent), ${r.tombstones ?? 0} of them tombstones`;
          out(`${r.principal}  prefix ${r.prefix}  umbrella ${r.umbrella}  ${r.mode}  ${counts}`);
        }
        return 0;
      }
      if (verb === 'add' && name !== undefined && rest.length === 0 && !removeOnly) {
        if (x.mode !== undefined && !isMode(x.mode)) throw new UsageError(`--mode is compat or least-privilege, not ${x.mode}\n${USAGE}`);
        const spec = { name, ...(x.prefix ? { prefix: x.prefix } : {}), ...(x.tags ? { tagBase: x.tags } : {}), ...(isMode(x.mode) ? { mode: x.mode } : {}), ...(x.egress ? { egress: x.egress } : {}), shareEgress: x['share-egress'] ?? false };
        const { entry } = await addPrincipal(ops, spec);
        const tags = entry['tags'] as Record<string, string>;
        if (p.json) out(JSON.stringify({ added: entry }));
        else {
          out(`added principal ${name}: prefix ${String(entry['namePrefix'])}, umbrella ${tags['umbrella']}; settings and policy installed`);
          out(`next: create the qube ${name} (its agent's MCP server runs there)${spec.egress ? ` and, if it is new, the egress qube ${spec.egress}` : ''}; tag a qube ${tags['umbrella']} to put it in ${name}'s world`);
        }
        return 0;
      }
      if (verb === 'remove' && name !== undefined && rest.length === 0 && !addOnly && !(x.entomb && x.release)) {
        const disposal: Disposal = x.entomb ? 'entomb' : x.release ? 'release' : 'refuse';
        const { qubes } = await removePrincipal(ops, name, disposal);
        const done = disposal === 'entomb' ? 'entombed' : 'released';
        if (p.json) out(JSON.stringify({ removed: name, [done]: qubes }));
        else {
          for (const q of qubes) out(`${done} ${q}`);
          out(`removed principal ${name}; settings and policy installed`);
        }
        return 0;
      }
    } catch (err) {
      if (!(err instanceof OperatorRefusal)) throw err;
      if (p.json) out(JSON.stringify({ refused: err.message }));
      process.stderr.write(`qmcp: refused: ${err.message}\n`);
      return 1;
    }
    throw new UsageError(USAGE);
  },
};
