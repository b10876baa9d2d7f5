/**
 * The demo-sized plan end to end, as the agent and the operator see it: an
 * MCP client submits create, firewall, start, run and copy steps with
 * plan_submit; the operator approves them with `qmcp dom0 plans approve`
 * on the simulated host; plan_status reads each step's result as its tool
 * would have returned it. The host is the demo's, with both its principals.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/client';
import { InMemoryTransport, type CallToolResult } from '@modelcontextprotocol/server';
import { simRunner } from '../../src/cli/sim-principal.js';
import { REFUSAL } from '../../src/principal/results.js';
import { createServer } from '../../src/principal/server.js';
import { demoFleet } from '../../src/sim/demo-fleet.js';
import { DEMO_HOST_SETTINGS } from '../../src/sim/demo-settings.js';
import { dom0Root, startSimHost, type SimHost } from '../../src/sim/host.js';
import { findBwrap } from '../../src/sim/sandbox/index.js';
import { PLAN_STEPS } from '../../scripts/gate-walk.js';

const QMCP = fileURLToPath(new URL('../../../bin/qmcp.js', import.meta.url));
const needsBwrap = { skip: findBwrap() === undefined ? 'needs bwrap' : false };

// the same plan as the gate walk-through (docs/action-gate.md, "A session")
const STEPS = PLAN_STEPS;

describe('a reviewable plan through MCP on the simulated host', needsBwrap, () => {
  let dir: string;
  let host: SimHost;
  let client: Client;

  async function call(name: string, args: Record<string, unknown>): Promise<CallToolResult> {
    return (await client.callTool({ name, arguments: args })) as CallToolResult;
  }

  async function succeed<T>(name: string, args: Record<string, unknown>): Promise<T> {
    const r = await call(name, args);
    assert.notEqual(r.isError, true, `${name}: ${JSON.stringify(r.content)}`);
    return r.structuredContent as T;
  }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'qmcp-plan-demo-'));
    host = await startSimHost({ dir, fleet: demoFleet(), install: true, initialSettings: DEMO_HOST_SETTINGS });
    const [serverSide, clientSide] = InMemoryTransport.createLinkedPair();
    await createServer(simRunner(dir)).connect(serverSide);
    client = new Client({ name: 'plan-demo', version: '0' });
    await client.connect(clientSide);
  });
  after(async () => {
    await client?.close();
    await host?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('is submitted, approved by the operator, run to the end, and read back step by step', async () => {
    assert.deepEqual(await succeed('plan_submit', { purpose: 'build a box and hand its result over', steps: STEPS }), { plan: '1', status: 'pending' });
    const waiting = await succeed<{ status: string; steps: { status: string }[] }>('plan_status', { plan: '1' });
    assert.deepEqual([waiting.status, ...waiting.steps.map((s) => s.status)], ['pending', ...STEPS.map(() => 'pending')]);

    const approved = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, [QMCP, 'dom0', 'plans', 'approve', '1', '--root', dom0Root(dir), '--qubesd-socket', host.qubesd.socketPath], (err, stdout, stderr) =>
        resolve({ code: err ? Number((err as { code?: unknown }).code) : 0, stdout, stderr }),
      );
    });
    assert.equal(approved.code, 0, approved.stdout + approved.stderr);
    assert.match(approved.stdout, /step 6: done\nplan 1 done\n$/);

    const status = await succeed<{ plan: string; status: string; steps: { step: number; tool: string; status: string; result?: Record<string, unknown> }[] }>('plan_status', { plan: '1' });
    assert.equal(status.status, 'done');
    assert.deepEqual(status.steps.map((s) => [s.step, s.tool, s.status]), STEPS.map((s, i) => [i + 1, s.tool, 'done']));
    const results = status.steps.map((s) => s.result);
    assert.deepEqual(results[0], { name: 'ai-plan', class: 'AppVM', template: 'ai-debian-tpl' });
    assert.deepEqual(results[1], { qube: 'ai-plan', rules: ['action=accept dsthost=example.com proto=tcp dstports=443-443', 'action=drop'] });
    assert.deepEqual(results[2], { qube: 'ai-plan', state: 'Running' });
    assert.deepEqual(
      { exit: results[3]?.['exit_status'], out: results[3]?.['stdout'], timedOut: results[3]?.['timed_out'] },
      { exit: 0, out: 'built\n', timedOut: false },
    );
    assert.deepEqual(results[5], {
      source: 'ai-plan',
      target: 'ai-exec-box',
      copied: 1,
      directory: '/home/user/QubesIncoming/ai-plan/',
      files: ['/home/user/QubesIncoming/ai-plan/out.txt'],
    });
    const landed = await succeed<{ exit_status: number; stdout: string }>('qube_run', { qube: 'ai-exec-box', argv: ['cat', '/home/user/QubesIncoming/ai-plan/out.txt'] });
    assert.deepEqual([landed.exit_status, landed.stdout], [0, 'built\n']);
  });

  it('refuses a plan reaching outside uniformly, and says which step the agent itself got wrong', async () => {
    assert.deepEqual(await call('plan_submit', { purpose: 'peek', steps: [{ tool: 'qube_start', arguments: { qube: 'ai-exec-box' } }, { tool: 'qube_info', arguments: { qube: 'vault' } }] }), REFUSAL);
    assert.deepEqual(await call('plan_status', { plan: '7' }), REFUSAL);
    const wrong = await call('plan_submit', { purpose: 'oops', steps: [{ tool: 'qube_start', arguments: { qube: 'ai-exec-box' } }, { tool: 'events_poll', arguments: { wait_seconds: 1 } }] });
    assert.equal(wrong.isError, true);
    assert.deepEqual(wrong.content, [{ type: 'text', text: 'Step 2: events_poll cannot be a plan step.' }]);
  });
});
