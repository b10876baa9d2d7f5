import type { Command } from '../command.js';
import { UsageError } from '../command.js';
import { parseDom0Options, principalFor } from '../args.js';
import { openAudit } from '../../dom0/audit/index.js';
import { OperatorRefusal, isTierChoice, setTier } from '../../dom0/operator/index.js';
import { Qubesd } from '../../dom0/qubesd.js';

const USAGE = `usage: qmcp dom0 tier QUBE none|exec|net|full [--principal NAME] [--root DIR] [--qubesd-socket PATH] [--json]

Sets the agent's tier over QUBE: adds the umbrella tag when missing and
keeps exactly one elevation tag (none: the umbrella only, which is read in
least-privilege mode and full in compat mode). Refuses dom0, sink qubes
and tombstones. With several principals, --principal names whose world
QUBE is in (a qube in another's world is refused). Exit 0 done, 1 refused,
2 usage.`;

export const dom0TierCommand: Command = {
  path: ['dom0', 'tier'],
  summary: "set the agent's tier over a qube (QUBE none|exec|net|full)",
  usage: USAGE,
  async run(args) {
    const p = parseDom0Options(args, USAGE);
    const { root, socket, json, positionals } = p;
    const principal = principalFor(p);
    const [qube, tier, ...rest] = positionals;
    if (qube === undefined || !isTierChoice(tier) || rest.length > 0) throw new UsageError(USAGE);
    try {
      const r = await setTier(
        { root, qubesd: new Qubesd(socket), audit: openAudit({ root }), ...(principal !== undefined ? { principal } : {}) },
        qube,
        tier,
      );
      if (json) process.stdout.write(JSON.stringify(r) + '\n');
      else {
        const change = r.added.length || r.removed.length ? ` (added: ${r.added.join(', ') || 'none'}; removed: ${r.removed.join(', ') || 'none'})` : ' (unchanged)';
        process.stdout.write(`${qube}: tier ${tier}${change}\n`);
      }
      return 0;
    } catch (err) {
      if (!(err instanceof OperatorRefusal)) throw err;
      if (json) process.stdout.write(JSON.stringify({ refused: err.message }) + '\n');
      process.stderr.write(`qmcp: refused: ${err.message}\n`);
      return 1;
    }
  },
};
