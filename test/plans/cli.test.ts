/**
 * `qmcp dom0 plans` as the operator runs it: what show prints cannot be
 * forged by what the agent chose (its purpose and commands are quoted and
 * escaped values), and the exit statuses say what happened.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { decodeExecRequest } from '../../src/shared/inqube-protocol.js';
import { execReply, json, startPlanHost, startQubes, step, type PlanHost } from './helpers.js';

const QMCP = fileURLToPath(new URL('../../../bin/qmcp.js', import.meta.url));

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

describe('qmcp dom0 plans', () => {
  let ph: PlanHost;
  const plans = (...args: string[]): Promise<Run> =>
    new Promise((resolve) => {
      execFile(process.execPath, [QMCP, 'dom0', 'plans', ...args, '--root', ph.h.root, '--qubesd-socket', ph.h.sim.socketPath], (err, stdout, stderr) => {
        resolve({ code: err ? Number((err as { code?: unknown }).code) : 0, stdout, stderr });
      });
    });

  before(async () => {
    ph = await startPlanHost();
    await startQubes(ph, 'ai-box');
    ph.answer = (c) => ({ status: 0, stdout: execReply(Buffer.from(decodeExecRequest(c.payload)?.shell ?? '').toString() === 'false' ? 1 : 0, '') });
  });
  after(() => ph.done());

  it('lists nothing before the agent submits', async () => {
    assert.deepEqual(await plans('list'), { code: 0, stdout: 'no plans\n', stderr: '' });
  });

  it('shows the agent\'s purpose and command as quoted values, never as lines of their own', async () => {
    const forged = 'true\nstep 2 of 2:\n  operation: start (start a halted qube)';
    json(await ph.submit([step.run('ai-box', forged)], 'say "hi" \\ then stop'));
    const shown = await plans('show', '1');
    assert.equal(shown.code, 0, shown.stderr);
    const lines = shown.stdout.trimEnd().split('\n');
    for (const l of lines) assert.match(l, /^[\x20-\x7e]*$/);
    assert.deepEqual(lines.filter((l) => l.startsWith('step ')), ['step 1 of 1:']);
    assert.ok(lines.includes(`purpose (the agent's words): "say \\"hi\\" \\\\ then stop"`), shown.stdout);
    assert.ok(lines.includes('  command: sh -c "true\\x0astep 2 of 2:\\x0a  operation: start (start a halted qube)"'), shown.stdout);
    assert.match(lines[0] ?? '', /^plan 1, submitted by "mcp-control" at \S+: pending, lapses at \S+$/);
    const listed = await plans('list');
    assert.match(listed.stdout, /^1 {2}pending {2}by "mcp-control" {2}1 steps {2}lapses \S+ {2}purpose "say \\"hi\\" \\\\ then stop"\n$/);
  });

  it('denies once: a denied plan can be neither denied nor approved again', async () => {
    assert.deepEqual(await plans('deny', '1'), { code: 0, stdout: 'plan 1 denied\n', stderr: '' });
    const again = await plans('deny', '1');
    assert.deepEqual([again.code, again.stderr], [1, 'qmcp: refused: plan 1 is denied: only a pending plan can be answered\n']);
    assert.equal((await plans('approve', '1')).code, 1);
    assert.deepEqual(ph.qubeCalls, []);
  });

  it('approves and runs a plan in the foreground, step by step; 3 when it stops at a failed step', async () => {
    json(await ph.submit([step.run('ai-box', 'true'), step.run('ai-box', 'false'), step.run('ai-box', 'true')]));
    const ran = await plans('approve', '2');
    assert.equal(ran.code, 3, ran.stderr);
    const tail = ran.stdout.trimEnd().split('\n').slice(-6);
    assert.deepEqual(tail, [
      'plan 2 approved; running its 3 steps now',
      'step 1: running',
      'step 1: done',
      'step 2: running',
      'step 2: failed: the command exited 1',
      'plan 2 stopped: see above, and qmcp dom0 plans show 2',
    ]);
    json(await ph.submit([step.run('ai-box', 'true')]));
    const ok = await plans('approve', '3');
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /step 1: done\nplan 3 done\n$/);
  });

  it('says which step creates a qube a later step acts on, and lists plans as JSON', async () => {
    json(await ph.submit([step.dom0('create', '', { name: 'ai-made', template: 'ai-tpl' }), step.dom0('start', 'ai-made')]));
    const shown = (await plans('show', '4')).stdout.split('\n');
    const second = shown.indexOf('step 2 of 2:');
    assert.ok(second > 0 && shown.slice(second).includes('  "ai-made" is the qube step 1 of this plan creates'), shown.join('\n'));
    const listed = JSON.parse((await plans('list', '--json')).stdout) as { plan: string; state: string; steps: { operation: string }[] }[];
    assert.deepEqual(listed.map((p) => [p.plan, p.state]), [['1', 'denied'], ['2', 'failed'], ['3', 'done'], ['4', 'pending']]);
    assert.deepEqual(listed[3]?.steps.map((s) => s.operation), ['create', 'start']);
  });

  it('answers a usage mistake and an unknown plan apart', async () => {
    assert.equal((await plans('approve')).code, 2);
    const none = await plans('show', '9');
    assert.deepEqual([none.code, none.stderr], [1, 'qmcp: refused: no plan 9\n']);
  });
});
