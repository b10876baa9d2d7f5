/**
 * `qmcp selftest [--sim DIR] [--qrexec-client PATH] [--template NAME]
 *   [--dvmt NAME] [--prefix P] [--probe-exec] [--json] [--keep]`: the boundary
 * scenarios, run from the principal qube with only what the agent has.
 */
import { resolve } from 'node:path';
import type { Command } from '../command.js';
import { UsageError } from '../command.js';
import { parseCli } from '../args.js';
import { spawnCaller, transportCaller } from '../../principal/selftest/caller.js';
import { askLine, DEFAULT_TIER_TAGS } from '../../principal/selftest/context.js';
import type { GateAnswers } from '../../principal/selftest/context.js';
import { formatReport, runSelftest } from '../../principal/selftest/run.js';
import { isQubeName } from '../../shared/names.js';
import { simHostProblem, simTransport } from '../sim-principal.js';

const USAGE = `usage: qmcp selftest [--sim DIR | --qrexec-client PATH] [--template NAME] [--dvmt NAME]
                     [--prefix P] [--probe-exec] [--gate-answers deny|allow|skip] [--json] [--keep]

Runs the boundary scenarios (visibility, uniform refusals, redaction, tiers,
create rules, gate, tombstones) through qrexec-client-vm, as the agent would
(with --sim, the simulated router is called from this process instead). It
changes only fixtures it creates inside the reserved prefix (default "ai-"),
and removes them at the end unless --keep: removal leaves tombstones, which
the operator reaps or restores in dom0 with \`qmcp dom0 tombstones\`.
--probe-exec runs \`true\` in each visible running qube to see where exec is
allowed. When a call waits for the operator's approval, a line on stderr says
which request to answer in dom0 with \`qmcp dom0 approvals\`: the gate
scenario's label change asks for --gate-answers (default deny), the fixtures'
removals ask for allow; skip withdraws every call that waits (the gate
scenario is then not run, and fixtures the gate holds are left). Exit status: 0 all passed, 1 some failed (or no simulated host runs
at DIR), 3 incomplete (none failed, some not run), 2 usage.`;

export const selftestCommand: Command = {
  path: ['selftest'],
  summary: 'run the boundary scenarios against this machine (or a simulated host) as the agent',
  usage: USAGE,
  async run(argv: string[]): Promise<number> {
    const { values, positionals } = parseCli(
      argv,
      {
        sim: { type: 'string' },
        'qrexec-client': { type: 'string' },
        template: { type: 'string' },
        dvmt: { type: 'string' },
        prefix: { type: 'string' },
        'probe-exec': { type: 'boolean' },
        json: { type: 'boolean' },
        keep: { type: 'boolean' },
        'gate-answers': { type: 'string' },
      },
      USAGE,
    );
    if (positionals.length > 0) throw new UsageError(`unexpected argument: ${positionals[0]}\n${USAGE}`);
    if (values.sim !== undefined && values['qrexec-client'] !== undefined) throw new UsageError(`give --sim or --qrexec-client, not both\n${USAGE}`);
    for (const key of ['template', 'dvmt'] as const) {
      const v = values[key];
      if (v !== undefined && !isQubeName(v)) throw new UsageError(`--${key} needs a qube name\n${USAGE}`);
    }
    const prefix = values.prefix ?? 'ai-';
    if (!/^[a-zA-Z][a-zA-Z0-9_.-]{0,15}$/.test(prefix)) throw new UsageError(`--prefix needs the start of a qube name\n${USAGE}`);
    const gateAnswers = values['gate-answers'] ?? 'deny';
    if (!['deny', 'allow', 'skip'].includes(gateAnswers)) throw new UsageError(`--gate-answers needs deny, allow or skip\n${USAGE}`);
    if (values.sim !== undefined) {
      const problem = await simHostProblem(resolve(values.sim));
      if (problem !== undefined) {
        process.stderr.write(`qmcp selftest: ${problem}\n`);
        return 1;
      }
    }
    // the simulated router is reached in this process, as `serve --sim` reaches it: no Node client started per call
    const caller =
      values.sim !== undefined ? transportCaller(simTransport(resolve(values.sim))) : spawnCaller({ client: values['qrexec-client'] ?? 'qrexec-client-vm' });
    const report = await runSelftest(caller, {
      prefix,
      keep: values.keep ?? false,
      probeExec: values['probe-exec'] ?? false,
      tierTags: DEFAULT_TIER_TAGS,
      gateAnswers: gateAnswers as GateAnswers,
      onAsk: (ask) => void process.stderr.write(`qmcp selftest: ${askLine(ask)}\n`),
      ...(values.template !== undefined ? { template: values.template } : {}),
      ...(values.dvmt !== undefined ? { dvmt: values.dvmt } : {}),
    });
    process.stdout.write(values.json ? JSON.stringify(report) + '\n' : formatReport(report));
    return report.exitStatus;
  },
};
