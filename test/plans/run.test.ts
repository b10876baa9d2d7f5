/**
 * Running an approved plan, in the operator's command: steps in order,
 * each made exactly as approved and checked again as it starts (the
 * settings and model the approval bound, scope and tier as they are then);
 * the first failure stops the plan; the approval is used once and only for
 * the plan as submitted; a call the principal makes itself is no step of
 * it. Each guard has a weakened variant here that the same check catches.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { auditLogPath, openAudit } from '../../src/dom0/audit/index.js';
import { runPlan } from '../../src/dom0/plans/execute.js';
import { approvePlan, PlanRefusal, recordApproval } from '../../src/dom0/plans/operator.js';
import { plansDir, type PlanRecord } from '../../src/dom0/plans/store.js';
import { decodeExecRequest, encodeExecRequest } from '../../src/shared/inqube-protocol.js';
import { planRequestJson, type PlanStep } from '../../src/shared/plan-protocol.js';
import { OPEN_GATE } from '../../src/sim/open-gate.js';
import { answerNext } from '../gate/helpers.js';
import { call as callService, startHost } from '../services-write/helpers.js';
import { BASE_SETTINGS, PRINCIPAL, REFUSED, execReply, json, startPlanHost, startQubes, step, weakened, type PlanHost } from './helpers.js';

type RunPlan = typeof runPlan;
type Approve = typeof approvePlan;

const memory = (ph: PlanHost): unknown => ph.h.sim.app.vms.get('ai-box')?.props['memory'];
const setMemory = (value: number): PlanStep => step.dom0('property.set', 'ai-box', { name: 'memory', value });

async function submitted(ph: PlanHost, steps: readonly PlanStep[]): Promise<string> {
  return String(json(await ph.submit(steps))['plan']);
}

interface StatusStep {
  state: string;
  status?: number;
  output?: string;
}

async function stepsOf(ph: PlanHost, id: string): Promise<{ state: string; steps: StatusStep[] }> {
  const s = json(await ph.status(id));
  return { state: String(s['state']), steps: s['steps'] as StatusStep[] };
}

/** The stand-in answers a command by its text: `fail` exits 1, anything else 0 with the command echoed. */
function byCommand(ph: PlanHost): void {
  ph.answer = (c) => {
    const shell = Buffer.from(decodeExecRequest(c.payload)?.shell ?? '').toString();
    return { status: 0, stdout: execReply(shell.includes('fail') ? 1 : 0, shell) };
  };
}

describe('running an approved plan', () => {
  let ph: PlanHost;
  beforeEach(async () => {
    ph = await startPlanHost();
    await startQubes(ph, 'ai-box', 'ai-peer');
    byCommand(ph);
  });
  afterEach(() => ph.done());

  it('runs every step in order, each exactly as approved, and ties each to the plan in the audit log', async () => {
    const run = step.run('ai-box', 'echo two');
    const rules = 'action=accept dsthost=example.com proto=tcp dstports=443-443\naction=drop\n';
    const id = await submitted(ph, [setMemory(500), run, setMemory(600), step.firewall('ai-peer', rules), step.run('ai-box', 'echo five')]);
    const done = await approvePlan(ph.deps(), id);
    assert.equal(done.state, 'done');
    // the commands ran from dom0, as root, with the approved bytes, each after the step before it
    assert.deepEqual(
      ph.qubeCalls.map((c) => [c.qube, c.service, c.argument, c.source, c.user, c.memoryThen]),
      [
        ['ai-box', 'qmcp.Exec', '', 'dom0', 'root', 500],
        ['ai-box', 'qmcp.Exec', '', 'dom0', 'root', 600],
      ],
    );
    assert.ok(ph.qubeCalls[0]?.payload.equals(run.payload));
    assert.equal(memory(ph), 600);
    assert.equal(await ph.h.qubesd.call('admin.vm.firewall.Get', 'ai-peer'), rules);
    const status = await stepsOf(ph, id);
    assert.equal(status.state, 'done');
    assert.deepEqual(status.steps.map((s) => [s.state, s.status]), [['done', 0], ['done', 0], ['done', 0], ['done', 0], ['done', 0]]);
    assert.deepEqual(JSON.parse(Buffer.from(status.steps[0]?.output ?? '', 'base64').toString()), { name: 'memory', value: 500 });
    assert.ok(Buffer.from(status.steps[1]?.output ?? '', 'base64').equals(execReply(0, 'echo two')));
    assert.deepEqual(JSON.parse(Buffer.from(status.steps[3]?.output ?? '', 'base64').toString()), { name: 'ai-peer', rules: rules.trimEnd().split('\n') });

    const plan = JSON.parse(readFileSync(join(plansDir(ph.h.root), PRINCIPAL, `${id}.json`), 'utf8')) as PlanRecord;
    const entries = readFileSync(auditLogPath(ph.h.root), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { kind: string; operation: string; correlation: string; result: string | null; detail: string | null });
    const mine = entries.filter((e) => e.correlation === plan.correlation).map((e) => `${e.kind} ${e.operation} ${e.result ?? '-'} ${e.detail ?? ''}`.trim());
    assert.deepEqual(mine, [
      `plan plan.submit ok plan ${id} submitted, 5 steps`,
      `plan plan.submit ok plan ${id} approved by tester (cli)`,
      `plan property.set - plan ${id} step 1 started`,
      'intent property.set -',
      'outcome property.set ok',
      `plan property.set ok plan ${id} step 1 done`,
      `plan run - plan ${id} step 2 started`,
      `plan run ok plan ${id} step 2 done`,
      `plan property.set - plan ${id} step 3 started`,
      'intent property.set -',
      'outcome property.set ok',
      `plan property.set ok plan ${id} step 3 done`,
      `plan firewall.set - plan ${id} step 4 started`,
      'intent firewall.set -',
      'outcome firewall.set ok',
      `plan firewall.set ok plan ${id} step 4 done`,
      `plan run - plan ${id} step 5 started`,
      `plan run ok plan ${id} step 5 done`,
      `plan plan.submit ok plan ${id} done`,
    ]);
  });

  it('stops at the first step that fails; the later steps are skipped', async () => {
    const id = await submitted(ph, [step.run('ai-box', 'echo one'), step.run('ai-box', 'fail'), setMemory(700), step.run('ai-box', 'echo four')]);
    const ended = await approvePlan(ph.deps(), id);
    assert.equal(ended.state, 'failed');
    assert.equal(ph.qubeCalls.length, 2);
    assert.notEqual(memory(ph), 700);
    const status = await stepsOf(ph, id);
    assert.equal(status.state, 'failed');
    assert.deepEqual(status.steps.map((s) => s.state), ['done', 'failed', 'skipped', 'skipped']);
    // the failed command's reply is kept for the agent: exit status 1 and its output
    assert.ok(Buffer.from(status.steps[1]?.output ?? '', 'base64').equals(execReply(1, 'fail')));
  });
});

describe('the operator stops a run', () => {
  it('starts no step after the operator asked to stop; the step running ends as it would', async () => {
    const ph = await startPlanHost();
    try {
      await startQubes(ph, 'ai-box');
      const id = await submitted(ph, [step.run('ai-box', 'echo one'), step.run('ai-box', 'echo two'), setMemory(700)]);
      const ended = await approvePlan({ ...ph.deps(), stopping: () => ph.qubeCalls.length > 0 }, id);
      assert.equal(ended.state, 'failed');
      assert.deepEqual(ended.results.map((r) => r.state), ['done', 'skipped', 'skipped']);
      assert.equal(ph.qubeCalls.length, 1);
      assert.notEqual(memory(ph), 700);
    } finally {
      await ph.done();
    }
  });
});

/** The checks below, each run with the real module and then with a weakened one that must fail it. */
describe('the guards of a run, and their weakened variants', () => {
  let ph: PlanHost;
  beforeEach(async () => {
    ph = await startPlanHost();
    await startQubes(ph, 'ai-box', 'ai-peer');
    byCommand(ph);
  });
  afterEach(() => ph.done());

  async function lowered(runPlan: RunPlan): Promise<void> {
    const id = await submitted(ph, [step.run('ai-peer', 'echo one'), step.run('ai-peer', 'echo two')]);
    const approved = await recordApproval(ph.deps(), id);
    // the operator lowers ai-peer from full to read after approving: the approval does not lift the ceiling
    await ph.h.qubesd.call('admin.vm.tag.Remove', 'ai-peer', 'ai-full');
    const ended = await runPlan(ph.deps(), approved);
    assert.equal(ended.state, 'failed');
    assert.deepEqual(ph.qubeCalls, []);
    assert.deepEqual((await stepsOf(ph, id)).steps.map((s) => [s.state, s.status]), [['failed', 126], ['skipped', undefined]]);
  }

  async function rebound(runPlan: RunPlan): Promise<void> {
    const id = await submitted(ph, [setMemory(900)]);
    const approved = await recordApproval(ph.deps(), id);
    // the settings change between the approval and the run (the mode, say): the approval no longer holds
    ph.h.writeSettings({ ...BASE_SETTINGS, mode: 'compat' });
    assert.equal((await runPlan(ph.deps(), approved)).state, 'failed');
    assert.notEqual(memory(ph), 900);
  }

  async function changedFile(approve: Approve): Promise<void> {
    const id = await submitted(ph, [step.run('ai-box', 'echo approved')]);
    // the plan file is changed after submission (its recorded digest kept): nothing of it may run
    const path = join(plansDir(ph.h.root), PRINCIPAL, `${id}.json`);
    const plan = JSON.parse(readFileSync(path, 'utf8')) as PlanRecord;
    const other = encodeExecRequest({ shell: 'echo other', timeoutSeconds: 30, outputLimit: 4096 }).toString('base64');
    writeFileSync(path, JSON.stringify({ ...plan, steps: [{ ...plan.steps[0], payload: other }] }));
    await assert.rejects(approve(ph.deps(), id), PlanRefusal);
    assert.deepEqual(ph.qubeCalls, []);
  }

  async function usedOnce(approve: Approve): Promise<void> {
    const id = await submitted(ph, [step.run('ai-box', 'echo once')]);
    // two approvals race for the same plan: one runs it, the other is refused
    const results = await Promise.allSettled([approve(ph.deps(), id), approve(ph.deps(), id)]);
    assert.deepEqual(results.map((r) => r.status).sort(), ['fulfilled', 'rejected']);
    await assert.rejects(approve(ph.deps(), id), PlanRefusal);
    assert.equal(ph.qubeCalls.length, 1);
  }

  async function halted(runPlan: RunPlan): Promise<void> {
    // a step never starts a qube by calling into it, as the policy's autostart=no: it fails as refused
    const id = await submitted(ph, [step.run('ai-execbox', 'echo one')]);
    assert.equal((await runPlan(ph.deps(), await recordApproval(ph.deps(), id))).state, 'failed');
    assert.deepEqual(ph.qubeCalls, []);
    assert.equal(ph.h.sim.app.vms.get('ai-execbox')?.power, 'Halted');
    assert.deepEqual((await stepsOf(ph, id)).steps.map((s) => [s.state, s.status]), [['failed', 126]]);
  }

  async function overLong(runPlan: RunPlan): Promise<void> {
    ph.answer = () => ({ status: 0, stdout: execReply(0, 'x'.repeat(300 * 1024)) });
    const id = await submitted(ph, [step.run('ai-box', 'yes')]);
    assert.equal((await runPlan(ph.deps(), await recordApproval(ph.deps(), id))).state, 'failed');
    assert.deepEqual((await stepsOf(ph, id)).steps.map((s) => [s.state, s.status, s.output]), [['failed', 125, '']]);
  }

  /** The guard's check passes with the real module, and fails with the one that leaves the guard out. */
  function guarded<T>(what: string, check: (impl: T) => Promise<void>, real: T, weak: { what: string; load: () => Promise<T> }): void {
    it(what, () => check(real));
    it(weak.what, async () => assert.rejects(check(await weak.load()), assert.AssertionError));
  }

  const execute = (guard: string, to: string) => async (): Promise<RunPlan> => ((await import(weakened('dom0/plans/execute.js', guard, to))) as { runPlan: RunPlan }).runPlan;
  const operator = (guard: string, to: string) => async (): Promise<Approve> => ((await import(weakened('dom0/plans/operator.js', guard, to))) as { approvePlan: Approve }).approvePlan;

  guarded('checks the tier of each step as it starts', lowered, runPlan, {
    what: 'a run without the tier re-check is caught',
    load: async () => {
      const snapshot = weakened('dom0/service/snapshot.js', 'if (!q || !atLeast(snapshot.tier(q), need.tier))', 'if (!q)');
      const url = weakened('dom0/plans/execute.js', null, '', { 'dom0/service/snapshot.js': snapshot });
      return ((await import(url)) as { runPlan: RunPlan }).runPlan;
    },
  });
  guarded('fails a step into a halted qube, and starts nothing', halted, runPlan, {
    what: 'a run that calls into a halted qube is caught',
    load: execute("if (qube.state !== 'Running')", 'if (false)'),
  });
  guarded('fails a step whose reply passes 256 KiB', overLong, runPlan, {
    what: 'a run that keeps a reply of any length is caught',
    load: async () => {
      const client = weakened('dom0/plans/qrexec-client.js', 'if (size > MAX_REPLY_BYTES)', 'if (false)');
      return ((await import(weakened('dom0/plans/execute.js', null, '', { 'dom0/plans/qrexec-client.js': client }))) as { runPlan: RunPlan }).runPlan;
    },
  });
  guarded('stops when the settings changed since the approval', rebound, runPlan, {
    what: 'a run that does not hold the settings to the approval is caught',
    load: execute('if (settingsDigest(config.settings) !== a.settings)\n', 'if (false)\n'),
  });
  guarded('refuses to run a plan whose file changed since it was submitted', changedFile, approvePlan, {
    what: 'an approval that does not check the digest is caught',
    load: operator('planDigest(p.principal, p.purpose, p.steps) !== p.digest', 'false'),
  });
  guarded('uses an approval once: of two racing, one runs the plan', usedOnce, approvePlan, {
    what: 'an approval that does not require a pending plan is caught',
    load: operator("if (state !== 'pending')", 'if (false)'),
  });
});

describe('a call of the principal is no step of a plan', () => {
  it('the exact call of the next step of a plan, made by the principal, still asks the operator as the gate says', async () => {
    const host = await startHost({ ...BASE_SETTINGS, gate: { ...OPEN_GATE, 'property.set': 'ask' } });
    try {
      const submittedPlan = await callService(host, 'qmcp.PlanSubmit', JSON.stringify(planRequestJson({ purpose: 'grow ai-box', steps: [setMemory(900)] })));
      assert.equal(submittedPlan.status, 0, submittedPlan.stderr);
      const id = String((JSON.parse(submittedPlan.stdout) as { plan: string }).plan);
      // the same bytes as step 1, from the principal: a request waits, and the operator denies it
      const direct = callService(host, 'qmcp.SetProperty+ai-box', JSON.stringify({ name: 'memory', value: 900 }));
      await answerNext(host.root, 'deny');
      assert.deepEqual(await direct, REFUSED);
      assert.notEqual(host.vm('ai-box')?.props['memory'], 900);
      const status = await callService(host, `qmcp.PlanStatus+${id}`);
      assert.deepEqual((JSON.parse(status.stdout) as { state: string; steps: { state: string }[] }).steps.map((x) => x.state), ['pending']);
      // the approved plan runs its step without asking: nothing but the operator's command runs it
      const deps = { root: host.root, qubesd: host.qubesd, audit: openAudit({ root: host.root }), log: () => undefined, now: () => new Date(), operator: 'tester' };
      assert.equal((await approvePlan(deps, id)).state, 'done');
      assert.equal(host.vm('ai-box')?.props['memory'], 900);
    } finally {
      await host.done();
    }
  });

  it('a direct call of the next step is made as any call, and the plan still runs that step itself', async () => {
    const ph = await startPlanHost();
    try {
      const id = await submitted(ph, [setMemory(900), setMemory(1000)]);
      // the principal makes the first step's exact call itself
      const direct = await ph.h.call('qmcp.SetProperty+ai-box', JSON.stringify({ name: 'memory', value: 900 }));
      assert.notDeepEqual(direct, REFUSED);
      assert.equal(memory(ph), 900);
      assert.deepEqual((await stepsOf(ph, id)).steps.map((s) => s.state), ['pending', 'pending']);
      await ph.h.qubesd.call('admin.vm.property.Set', 'ai-box', 'memory', '800');
      // the plan's own run makes both steps; nothing was skipped for the direct call
      assert.equal((await approvePlan(ph.deps(), id)).state, 'done');
      assert.equal(memory(ph), 1000);
    } finally {
      await ph.done();
    }
  });
});
