import { parseArgs } from 'node:util';
import type { Command } from '../command.js';
import { UsageError } from '../command.js';
import { openAudit } from '../../dom0/audit/index.js';
import { approvePlan, denyPlan, findPlan, listLines, PlanRefusal, showLines, type PlanOperatorDeps } from '../../dom0/plans/operator.js';
import { Qubesd } from '../../dom0/qubesd.js';

const DEFAULT_SOCKET = '/var/run/qubesd.sock';
const USAGE = `usage: qmcp dom0 plans list|show ID|approve ID|deny ID [--root DIR] [--qubesd-socket PATH]

The plans the agent submitted for review (docs/action-gate.md). list shows
each with its state; show prints one as numbered steps in plain language,
built from the live state (what the agent chose is shown quoted); approve
approves a pending plan and runs it here, in the foreground, each step
checked again as it starts, stopping at the first that fails; deny refuses
it. ID is the plan's number, or PRINCIPAL/ID. The settings are read under
DIR (default /), qubesd at PATH (default ${DEFAULT_SOCKET}).
Exit 0 done, 1 refused (no such plan, not pending, changed since it was
submitted), 2 usage, 3 the plan ran and stopped at a failed step.`;

interface Parsed {
  readonly root: string;
  readonly socket: string;
  readonly positionals: string[];
}

function parse(args: string[]): Parsed {
  try {
    const { values, positionals } = parseArgs({
      args,
      options: { root: { type: 'string' }, 'qubesd-socket': { type: 'string' } },
      allowPositionals: true,
      strict: true,
    });
    return { root: values.root ?? '/', socket: values['qubesd-socket'] ?? DEFAULT_SOCKET, positionals };
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\n${USAGE}`);
  }
}

function out(text: string): void {
  process.stdout.write(text + '\n');
}

function deps(p: Parsed): PlanOperatorDeps {
  return {
    root: p.root,
    qubesd: new Qubesd(p.socket),
    audit: openAudit({ root: p.root }),
    log: (m) => process.stderr.write(`qmcp: ${m}\n`),
    now: () => new Date(),
    report: (n, state, detail) => out(`step ${n}: ${state}${detail && detail !== 'done' ? `: ${detail}` : ''}`),
  };
}

export const plansCommand: Command = {
  path: ['dom0', 'plans'],
  summary: 'review the plans the agent submitted (list | show ID | approve ID | deny ID)',
  usage: USAGE,
  async run(args) {
    const p = parse(args);
    const [verb, ref, ...rest] = p.positionals;
    if (rest.length > 0) throw new UsageError(USAGE);
    const d = deps(p);
    try {
      if (verb === 'list' && ref === undefined) {
        const lines = listLines(p.root, d.now());
        out(lines.length === 0 ? 'no plans' : lines.join('\n'));
        return 0;
      }
      if (ref === undefined) throw new UsageError(USAGE);
      if (verb === 'show') {
        out((await showLines(d, findPlan(p.root, ref))).join('\n'));
        return 0;
      }
      if (verb === 'deny') {
        const plan = await denyPlan(d, ref);
        out(`plan ${plan.id} denied`);
        return 0;
      }
      if (verb === 'approve') {
        out((await showLines(d, findPlan(p.root, ref))).join('\n'));
        const plan = await approvePlan({ ...d, approved: (a) => out(`plan ${a.id} approved; running its ${a.steps.length} steps now`) }, ref);
        out(plan.state === 'done' ? `plan ${plan.id} done` : `plan ${plan.id} stopped: see above, and qmcp dom0 plans show ${plan.id}`);
        return plan.state === 'done' ? 0 : 3;
      }
    } catch (err) {
      if (!(err instanceof PlanRefusal)) throw err;
      process.stderr.write(`qmcp: refused: ${err.message}\n`);
      return 1;
    }
    throw new UsageError(USAGE);
  },
};
