/** `qmcp dom0 explain [QUBE]`: the agent's effective capabilities, from the installed policy, tags and mode. */
import type { Command } from '../command.js';
import { UsageError } from '../command.js';
import { parseCli, principalFor } from '../args.js';
import { DEFAULT_SOCKET } from '../../dom0/install/index.js';
import { explain, formatExplain } from '../../dom0/operator/explain.js';
import { QubesdUnreachable } from '../../dom0/operator/facts.js';

const USAGE = `usage: qmcp dom0 explain [QUBE] [--principal NAME] [--root DIR] [--qubesd-socket PATH] [--operations] [--json]

Shows what the agent can do over each qube (or QUBE), computed from the
policy installed under DIR (default /) with qmcp's policy engine, the dom0
services' tier rule and the installed mode, over the qubes and tags qubesd
reports at PATH (default ${DEFAULT_SOCKET}). Rows are qubes; columns are
capability groups (see, exec, net, full, copy, sink); cells are allowed,
ask, partial or — (refused). Qubes outside the umbrella are listed as not
visible. A line names the operations the gate asks the operator for, in
Qubes' dialog or through qmcp dom0 approvals. --operations adds each
qube's operations one by one. With several principals, --principal names
whose agent: the other worlds' qubes are not visible to it.
Exit 0 done, 1 qubesd unreachable or no such qube, 2 usage.`;

export const dom0ExplainCommand: Command = {
  path: ['dom0', 'explain'],
  summary: "show the agent's effective capabilities over each qube",
  usage: USAGE,
  async run(argv: string[]): Promise<number> {
    const { values, positionals } = parseCli(
      argv,
      { root: { type: 'string' }, 'qubesd-socket': { type: 'string' }, principal: { type: 'string' }, operations: { type: 'boolean' }, json: { type: 'boolean' } },
      USAGE,
    );
    if (positionals.length > 1) throw new UsageError(`one QUBE at most\n${USAGE}`);
    const qube = positionals[0];
    const root = values.root ?? '/';
    const principal = principalFor({ root, principal: values.principal });
    try {
      const report = await explain({ root, qubesdSocket: values['qubesd-socket'] ?? DEFAULT_SOCKET, ...(qube !== undefined ? { qube } : {}), ...(principal !== undefined ? { principal } : {}) });
      if (qube !== undefined && report.rows.length === 0) {
        if (values.json) process.stdout.write(JSON.stringify({ refused: `no qube named ${qube}` }) + '\n');
        process.stderr.write(`qmcp dom0 explain: no qube named ${qube}\n`);
        return 1;
      }
      process.stdout.write(values.json ? JSON.stringify(report) + '\n' : formatExplain(report, values.operations ?? false));
      return 0;
    } catch (err) {
      if (!(err instanceof QubesdUnreachable)) throw err;
      if (values.json) process.stdout.write(JSON.stringify({ refused: err.message }) + '\n');
      process.stderr.write(`qmcp dom0 explain: ${err.message}\n`);
      return 1;
    }
  },
};
