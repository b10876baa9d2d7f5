import type { Command } from '../command.js';
import { UsageError } from '../command.js';
import { parseDom0Options, principalFor } from '../args.js';
import { openAudit } from '../../dom0/audit/index.js';
import { OperatorRefusal, isMode, setMode } from '../../dom0/operator/index.js';

const USAGE = `usage: qmcp dom0 mode compat|least-privilege [--principal NAME] [--root DIR] [--json] [--qubesd-socket PATH (accepted; not needed)]

Switches how an umbrella qube without an elevation tag is treated (compat:
full; least-privilege: read). Rewrites the settings and re-renders the
policy together, so the installed pair always matches. With several
principals, --principal names whose mode; the policy of all is rendered
again. Exit 0 done, 1 refused, 2 usage.`;

export const dom0ModeCommand: Command = {
  path: ['dom0', 'mode'],
  summary: 'switch compat / least-privilege (settings and policy together)',
  usage: USAGE,
  async run(args) {
    const p = parseDom0Options(args, USAGE);
    const { root, json, positionals } = p;
    const [mode, ...rest] = positionals;
    if (!isMode(mode) || rest.length > 0) throw new UsageError(USAGE);
    try {
      const principal = principalFor(p);
      const r = await setMode({ root, audit: openAudit({ root }), ...(principal !== undefined ? { principal } : {}) }, mode);
      if (json) process.stdout.write(JSON.stringify(r) + '\n');
      else process.stdout.write(r.changed ? `mode ${r.previous ?? 'unset'} -> ${mode}; settings and policy rewritten\n` : `mode already ${mode}\n`);
      return 0;
    } catch (err) {
      if (!(err instanceof OperatorRefusal)) throw err;
      if (json) process.stdout.write(JSON.stringify({ refused: err.message }) + '\n');
      process.stderr.write(`qmcp: refused: ${err.message}\n`);
      return 1;
    }
  },
};
