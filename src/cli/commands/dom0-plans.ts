import { DEFAULT_QUBESD_SOCKET, parseDom0Options, principalsFor, type Dom0Options } from '../args.js';
import type { Command } from '../command.js';
import { UsageError } from '../command.js';
import { openAudit } from '../../dom0/audit/index.js';
import { approvePlan, denyPlan, findPlan, listLines, noteAllLapses, PlanRefusal, showLines, type PlanOperatorDeps } from '../../dom0/plans/operator.js';
import { allPlans, planState, type PlanRecord } from '../../dom0/plans/store.js';
import { Qubesd } from '../../dom0/qubesd.js';

const USAGE = `usage: qmcp dom0 plans list|show ID|approve ID|deny ID [--principal NAME] [--root DIR] [--qubesd-socket PATH] [--json]

The plans the agent submitted for review (docs/action-gate.md). list shows
each with its state; show prints one as numbered steps in plain language,
built from the live state (what the agent chose is shown quoted); approve
approves a pending plan and runs it here, in the foreground, each step
checked again as it starts, stopping at the first that fails (Ctrl-C stops
it after the step that runs; a second Ctrl-C at once); deny refuses it. ID
is the plan's number, or PRINCIPAL/ID (with --principal NAME: NAME/ID);
with several principals list shows each one's plans, or NAME's alone. A
plan is approved and runs with its submitter's settings. The settings are read under DIR
(default /), qubesd at PATH (default ${DEFAULT_QUBESD_SOCKET}).
Exit 0 done, 1 refused (no such plan, not pending, changed since it was
submitted), 3 the plan ran and stopped before its end (a failed step, or
Ctrl-C), 2 usage.`;

function out(text: string): void {
  process.stdout.write(text + '\n');
}

/** A plan for --json: what it is and how far it got, never its payloads. */
function summary(p: PlanRecord, now: Date): Record<string, unknown> {
  return {
    plan: p.id,
    principal: p.principal,
    state: planState(p, now),
    purpose: p.purpose,
    submitted: p.submitted,
    lapses: p.lapses,
    steps: p.steps.map((s, i) => ({ operation: s.operation, state: p.results[i]?.state ?? 'pending', ...(p.results[i]?.status !== undefined ? { status: p.results[i]?.status } : {}) })),
  };
}

function deps(p: Dom0Options): PlanOperatorDeps {
  return {
    root: p.root,
    qubesd: new Qubesd(p.socket),
    audit: openAudit({ root: p.root }),
    log: (m) => process.stderr.write(`qmcp: ${m}\n`),
    now: () => new Date(),
    ...(p.json ? {} : { report: (n: number, state: string, detail: string) => out(`step ${n}: ${state}${detail && detail !== 'done' ? `: ${detail}` : ''}`) }),
  };
}

async function verb(p: Dom0Options, d: PlanOperatorDeps, name: string | undefined, named: string | undefined): Promise<number> {
  // a plan lapses by the clock: its audit entry is written when dom0 first sees it lapsed
  await noteAllLapses(d);
  const [only] = p.principal === undefined ? [] : principalsFor(p);
  if (name === 'list' && named === undefined) {
    if (p.json) out(JSON.stringify(allPlans(p.root).filter((plan) => only === undefined || plan.principal === only).map((plan) => summary(plan, d.now()))));
    else out(listLines(p.root, d.now(), only).join('\n') || 'no plans');
    return 0;
  }
  if (named === undefined) throw new UsageError(USAGE);
  if (only !== undefined && named.includes('/')) throw new UsageError(`name the plan as ID with --principal, or as PRINCIPAL/ID without it\n${USAGE}`);
  const ref = only === undefined ? named : `${only}/${named}`;
  if (name === 'show') {
    const plan = findPlan(p.root, ref);
    out(p.json ? JSON.stringify({ ...summary(plan, d.now()), lines: await showLines(d, plan) }) : (await showLines(d, plan)).join('\n'));
    return 0;
  }
  if (name === 'deny') {
    const plan = await denyPlan(d, ref);
    out(p.json ? JSON.stringify(summary(plan, d.now())) : `plan ${plan.id} denied`);
    return 0;
  }
  if (name === 'approve') {
    if (!p.json) out((await showLines(d, findPlan(p.root, ref))).join('\n'));
    const approved = p.json ? {} : { approved: (a: PlanRecord) => out(`plan ${a.id} approved; running its ${a.steps.length} steps now`) };
    let stop = false;
    const onStop = (): void => {
      // a second signal ends the command at once, as it would without this
      if (stop) process.exit(130);
      stop = true;
      process.stderr.write('qmcp: stopping after the step that runs\n');
    };
    process.on('SIGINT', onStop).on('SIGTERM', onStop);
    const plan = await approvePlan({ ...d, ...approved, stopping: () => stop }, ref).finally(() => process.off('SIGINT', onStop).off('SIGTERM', onStop));
    if (p.json) out(JSON.stringify(summary(plan, d.now())));
    else out(plan.state === 'done' ? `plan ${plan.id} done` : `plan ${plan.id} stopped: see above, and qmcp dom0 plans show ${plan.id}`);
    return plan.state === 'done' ? 0 : 3;
  }
  throw new UsageError(USAGE);
}

export const plansCommand: Command = {
  path: ['dom0', 'plans'],
  summary: 'review the plans the agent submitted (list | show ID | approve ID | deny ID)',
  usage: USAGE,
  async run(args) {
    const p = parseDom0Options(args, USAGE);
    const [name, ref, ...rest] = p.positionals;
    if (rest.length > 0) throw new UsageError(USAGE);
    try {
      return await verb(p, deps(p), name, ref);
    } catch (err) {
      if (!(err instanceof PlanRefusal)) throw err;
      if (p.json) out(JSON.stringify({ refused: err.message }));
      process.stderr.write(`qmcp: refused: ${err.message}\n`);
      return 1;
    }
  },
};
