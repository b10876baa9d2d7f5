/**
 * The action gate walked through on the demo host, with the demo's settings
 * of both principals: the agent's calls (mcp-control's) through an MCP client
 * (`qmcp serve --sim`), the operator's answers through the real `qmcp dom0`
 * commands as child processes. test/workflow/gate.test.ts checks what it records;
 * scripts/gate-transcript.ts prints it (docs/action-gate.md, "A session").
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import type { CallToolResult } from '@modelcontextprotocol/server';
import { approvalsDir, listRequests } from '../src/dom0/gate/store.js';
import type { ApprovalRequest } from '../src/dom0/gate/store.js';
import { demoFleet } from '../src/sim/demo-fleet.js';
import { DEMO_HOST_SETTINGS, DEMO_SETTINGS } from '../src/sim/demo-settings.js';
import { dom0Root, startSimHost } from '../src/sim/host.js';
import { findBwrap } from '../src/sim/sandbox/index.js';
import { hangBoundMs } from '../verify/hang-bound.js';

const QMCP = fileURLToPath(new URL('../../bin/qmcp.js', import.meta.url));

/** One line of the session: what the agent called and got, or what the operator ran and saw. */
export type Entry =
  | { readonly who: 'agent'; readonly tool: string; readonly args: Record<string, unknown>; readonly result: CallToolResult; readonly progress: number }
  | { readonly who: 'operator'; readonly argv: readonly string[]; readonly status: number | null; readonly stdout: string };

/** The plan the agent submits: create, firewall, start, run and copy. */
export const PLAN_STEPS = [
  { tool: 'qube_create', arguments: { name: 'ai-plan', template: 'ai-debian-tpl' } },
  { tool: 'firewall_set', arguments: { qube: 'ai-plan', rules: ['action=accept dsthost=example.com proto=tcp dstports=443-443', 'action=drop'] } },
  { tool: 'qube_start', arguments: { qube: 'ai-plan' } },
  { tool: 'qube_run', arguments: { qube: 'ai-plan', user: 'root', shell: 'echo built > /root/out.txt && cat /root/out.txt', timeout_seconds: 60, output_limit: 4096 } },
  { tool: 'qube_start', arguments: { qube: 'ai-exec-box' } },
  { tool: 'qube_copy', arguments: { source: 'ai-plan', target: 'ai-exec-box', paths: ['/root/out.txt'] } },
];

export interface Walk {
  readonly entries: readonly Entry[];
  /** Whether the plan ran: its run and copy steps need a sandbox (bubblewrap). */
  readonly planned: boolean;
  /** The qubes the agent lists at the end. */
  readonly finalQubes: readonly string[];
}

/** Runs `qmcp ARGV` as the operator would; its status and output. */
function qmcp(argv: readonly string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [QMCP, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/** Waits (bounded by the machine's load, never a fixed window) until `ok()` holds. */
async function until<T>(ok: () => Promise<T | undefined> | T | undefined, what: string): Promise<T> {
  const limit = Date.now() + hangBoundMs(60_000);
  for (;;) {
    const v = await ok();
    if (v !== undefined) return v;
    if (Date.now() > limit) throw new Error(`never: ${what}`);
    await sleep(20);
  }
}

/** Runs the walk-through on a fresh demo host in a temporary directory, and removes it after. */
export async function walkGate(): Promise<Walk> {
  const dir = await mkdtemp(join(tmpdir(), 'qmcp-gate-walk-'));
  const host = await startSimHost({ dir, fleet: demoFleet(), install: true, initialSettings: DEMO_HOST_SETTINGS });
  const client = new Client({ name: 'gate-walk', version: '0' });
  const entries: Entry[] = [];
  const root = dom0Root(dir);
  const where = ['--root', root, '--qubesd-socket', host.qubesd.socketPath];
  try {
    await client.connect(new StdioClientTransport({ command: process.execPath, args: [QMCP, 'serve', '--sim', dir], stderr: 'ignore' }), { timeout: hangBoundMs(60_000) });

    const call = async (tool: string, args: Record<string, unknown>): Promise<CallToolResult> => {
      const result = (await client.callTool({ name: tool, arguments: args }, { timeout: hangBoundMs(60_000) })) as CallToolResult;
      entries.push({ who: 'agent', tool, args, result, progress: 0 });
      return result;
    };
    const operator = async (...argv: string[]): Promise<string> => {
      const r = await qmcp([...argv, ...where]);
      entries.push({ who: 'operator', argv: ['qmcp', ...argv, '--root', 'DIR/dom0', '--qubesd-socket', 'DIR/qubesd.sock'], status: r.status, stdout: r.stdout + r.stderr });
      return r.stdout;
    };
    /** A gated call: once its request waits and progress has come, the operator looks at it and answers. */
    const held = async (tool: string, args: Record<string, unknown>, answer: 'allow' | 'deny'): Promise<void> => {
      let progress = 0;
      const pending = client.callTool({ name: tool, arguments: args }, { onprogress: () => (progress += 1), timeout: hangBoundMs(60_000) }) as Promise<CallToolResult>;
      const request = await until<ApprovalRequest>(
        async () => (await listRequests(approvalsDir(root), new Date())).find((r) => r.state === 'pending')?.request,
        `a request for ${tool}`,
      );
      await until(() => (progress > 0 ? true : undefined), `progress from ${tool} while it waits`);
      await operator('dom0', 'approvals', 'list');
      await operator('dom0', 'approvals', 'show', request.id);
      await operator('dom0', 'approvals', answer, request.id);
      entries.push({ who: 'agent', tool, args, result: await pending, progress });
    };

    await call('qube_create', { name: 'ai-scratch', template: 'ai-debian-tpl' });
    await held('qube_remove', { qube: 'ai-scratch' }, 'allow');
    await held('qube_remove', { qube: 'ai-full-box' }, 'deny');
    const planned = findBwrap() !== undefined;
    if (planned) {
      const submitted = await call('plan_submit', { purpose: 'build a box and hand its result over', steps: PLAN_STEPS });
      const plan = (submitted.structuredContent as { plan: string }).plan;
      // a plan's number is its submitter's: with several principals, the operator names whose
      const whose = ['--principal', String(DEMO_SETTINGS['principal'])];
      await operator('dom0', 'plans', 'list');
      await operator('dom0', 'plans', 'show', plan, ...whose);
      await operator('dom0', 'plans', 'approve', plan, ...whose);
      await call('plan_status', { plan });
    }
    const listed = await call('qube_list', {});
    const finalQubes = (listed.structuredContent as { qubes: { qube: string }[] }).qubes.map((q) => q.qube);
    return { entries, planned, finalQubes };
  } finally {
    await client.close();
    await host.close();
    await rm(dir, { recursive: true, force: true });
  }
}
