/**
 * The MCP server against the simulated host while the gate holds a call for
 * the operator (Qubes' dialog, answered through the simulator's queue): the
 * call sends progress while it waits, and ends with the uniform refusal on a
 * denial or with its result on an approval.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import type { GateAnswer } from '../../src/shared/model/index.js';
import { REFUSAL } from '../../src/principal/results.js';
import { findBwrap } from '../../src/sim/sandbox/index.js';
import { startSimHost, type SimHost } from '../../src/sim/host.js';
import type { Fleet } from '../../src/sim/fleet.js';
import type { PendingAsk } from '../../src/sim/qrexec/asks.js';
import { askControl } from '../../src/sim/qrexec/asks.js';
import { OPEN_GATE } from '../../src/sim/open-gate.js';
import { hangBoundMs } from '../../verify/hang-bound.js';
import { within } from './fake-qrexec.js';

const QMCP = fileURLToPath(new URL('../../../bin/qmcp.js', import.meta.url));

const box = (name: string): Fleet['qubes'][number] => ({ name, klass: 'AppVM', template: 'ai-tpl', tags: ['ai-managed', 'ai-full'], properties: { netvm: null } });
const FLEET: Fleet = {
  qubes: [
    { name: 'tpl', klass: 'TemplateVM' },
    { name: 'ai-tpl', klass: 'TemplateVM', tags: ['ai-managed', 'ai-full'] },
    { name: 'mcp-control', klass: 'AppVM', template: 'tpl', properties: { netvm: null } },
    box('ai-one'),
    box('ai-two'),
  ],
};

/** Pause, firewall reload and copy ask in the dialog; nothing else asks. */
const GATE: Record<string, GateAnswer> = { ...OPEN_GATE, pause: 'ask', 'firewall.reload': 'ask', copy: 'ask' };

describe('qmcp serve --sim: a call the gate holds for the operator', () => {
  let dir: string;
  let host: SimHost;
  let client: Client;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'qmcp-principal-gate-'));
    host = await startSimHost({
      dir,
      fleet: FLEET,
      install: true,
      initialSettings: { principal: 'mcp-control', namePrefix: 'ai-', gate: GATE },
      // the test answers every question; the bound only ends a hang
      askTimeoutMs: hangBoundMs(120_000),
    });
    client = new Client({ name: 'test', version: '0' });
    await client.connect(new StdioClientTransport({ command: process.execPath, args: [QMCP, 'serve', '--sim', dir], stderr: 'ignore' }));
  });
  after(async () => {
    await client?.close();
    await host?.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function waiting(service: string, source = 'mcp-control'): Promise<PendingAsk> {
    let found: PendingAsk | undefined;
    await within(60_000, async () => {
      const r = await askControl(host.router.askSocket, { op: 'list' });
      found = r.ok ? r.asks?.find((q) => q.service === service && q.source === source) : undefined;
      return found !== undefined;
    }, `${service} to wait`);
    return found as PendingAsk;
  }

  async function answer(q: PendingAsk, target: string | null): Promise<void> {
    const r = await askControl(host.router.askSocket, target === null ? { op: 'deny', id: q.id } : { op: 'allow', id: q.id, target });
    assert.ok(r.ok, JSON.stringify(r));
  }

  /** Calls a tool, and once its question waits and progress has come, answers it. */
  async function held(name: string, args: Record<string, unknown>, service: string, target: string | null): Promise<{ result: unknown; progress: unknown[] }> {
    const progress: unknown[] = [];
    const call = client.callTool({ name, arguments: args }, { onprogress: (p) => progress.push(p) });
    const q = await waiting(service);
    await within(60_000, () => progress.length > 0, `progress from ${name} while it waits`);
    await answer(q, target);
    return { result: await call, progress };
  }

  it('pause: progress while it waits; denied, the uniform refusal; approved, its result', async () => {
    assert.deepEqual((await client.callTool({ name: 'qube_start', arguments: { qube: 'ai-one' } })).structuredContent, { qube: 'ai-one', state: 'Running' });
    const denied = await held('qube_pause', { qube: 'ai-one' }, 'admin.vm.Pause', null);
    assert.deepEqual(denied.result, REFUSAL);
    assert.ok(denied.progress.every((p) => (p as { message?: string }).message === 'working'));
    assert.equal(host.qubesd.app.vms.get('ai-one')?.power, 'Running');
    const allowed = await held('qube_pause', { qube: 'ai-one' }, 'admin.vm.Pause', 'dom0');
    assert.deepEqual((allowed.result as { structuredContent?: unknown }).structuredContent, { qube: 'ai-one' });
    assert.equal(host.qubesd.app.vms.get('ai-one')?.power, 'Paused');
    await client.callTool({ name: 'qube_unpause', arguments: { qube: 'ai-one' } });
    assert.equal(host.qubesd.app.vms.get('ai-one')?.power, 'Running');
  });

  it('firewall_reload: approved, its result', async () => {
    const r = await held('firewall_reload', { qube: 'ai-two' }, 'admin.vm.firewall.Reload', 'dom0');
    assert.deepEqual((r.result as { structuredContent?: unknown }).structuredContent, { qube: 'ai-two' });
  });

  it('copy: asks for the source, then for the destination; approved, the file arrives', { skip: findBwrap() === undefined ? 'needs bwrap' : false }, async () => {
    for (const qube of ['ai-one', 'ai-two']) await client.callTool({ name: 'qube_start', arguments: { qube } });
    await client.callTool({ name: 'qube_write_file', arguments: { qube: 'ai-one', path: '/root/note', content: 'held' } });
    const progress: unknown[] = [];
    const call = client.callTool({ name: 'qube_copy', arguments: { source: 'ai-one', target: 'ai-two', paths: ['/root/note'] } }, { onprogress: (p) => progress.push(p) });
    await answer(await waiting('qmcp.CopyTo'), 'ai-one');
    await answer(await waiting('qubes.Filecopy', 'ai-one'), 'ai-two');
    const r = await call;
    assert.notEqual(r, REFUSAL);
    assert.ok(progress.length > 0);
    const read = await client.callTool({ name: 'qube_read_file', arguments: { qube: 'ai-two', path: '/home/user/QubesIncoming/ai-one/note' } });
    assert.equal((read.structuredContent as { content: string }).content, 'held');
    const denied = await held('qube_copy', { source: 'ai-one', target: 'ai-two', paths: ['/root/note'] }, 'qmcp.CopyTo', null);
    assert.deepEqual(denied.result, REFUSAL);
  });
});
