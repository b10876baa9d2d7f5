/** The MCP server against the simulated host with qmcp's dom0 side installed: real policy, real services. */
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { REFUSAL } from '../../src/principal/results.js';
import { findBwrap } from '../../src/sim/sandbox/index.js';
import { envServiceMode, startSimHost, type SimHost } from '../../src/sim/host.js';
import type { Fleet } from '../../src/sim/fleet.js';
import { isAlive, within } from './fake-qrexec.js';
import { OPEN_GATE } from '../../src/sim/open-gate.js';

const QMCP = fileURLToPath(new URL('../../../bin/qmcp.js', import.meta.url));

const FLEET: Fleet = {
  qubes: [
    { name: 'tpl', klass: 'TemplateVM' },
    { name: 'ai-tpl', klass: 'TemplateVM', tags: ['ai-managed', 'ai-full'] },
    { name: 'mcp-control', klass: 'AppVM', template: 'tpl', properties: { netvm: null } },
    { name: 'ai-egress', klass: 'AppVM', template: 'ai-tpl', tags: ['ai-managed'], properties: { provides_network: true, netvm: null } },
    { name: 'ai-dvm', klass: 'AppVM', template: 'ai-tpl', tags: ['ai-managed', 'ai-full'], properties: { template_for_dispvms: true, netvm: null } },
    { name: 'ai-box', klass: 'AppVM', template: 'ai-tpl', tags: ['ai-managed', 'ai-full'], properties: { netvm: null } },
    { name: 'ai-seen', klass: 'AppVM', template: 'ai-tpl', tags: ['ai-managed'], properties: { netvm: null } },
    { name: 'ai-hidden', klass: 'AppVM', template: 'tpl', properties: { netvm: null } },
    { name: 'work', klass: 'AppVM', template: 'tpl', properties: { netvm: null } },
  ],
};

/** Live processes of this host, a sandbox's included, whose argv is exactly `argv`. */
function processesRunning(argv: readonly string[]): number[] {
  const want = argv.join('\0') + '\0';
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'latin1') === want && isAlive(Number(entry))) found.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

describe('qmcp serve --sim', () => {
  let dir: string;
  let host: SimHost;
  let client: Client;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'qmcp-principal-sim-'));
    host = await startSimHost({
      dir,
      fleet: FLEET,
      install: true,
      // about the principal's server, not how a dom0 service is started: the resident process unless the run asks otherwise
      serviceMode: envServiceMode() ?? 'resident',
      initialSettings: { principal: 'mcp-control', namePrefix: 'ai-', egressQube: 'ai-egress', poolCapBytes: 2 ** 40, privateCapBytes: 2 ** 33, birthCeiling: 'exec', gate: OPEN_GATE },
    });
    client = new Client({ name: 'test', version: '0' });
    await client.connect(new StdioClientTransport({ command: process.execPath, args: [QMCP, 'serve', '--sim', dir], stderr: 'ignore' }));
  });
  after(async () => {
    await client?.close();
    await host?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('lists the umbrella only', async () => {
    const r = await client.callTool({ name: 'qube_list', arguments: {} });
    const rows = (r.structuredContent as { qubes: { qube: string; class: string }[] }).qubes;
    const names = rows.map((q) => q.qube);
    assert.equal(rows.find((q) => q.qube === 'ai-box')?.class, 'AppVM');
    assert.ok(names.includes('ai-box') && names.includes('ai-seen'));
    assert.ok(!names.includes('ai-hidden') && !names.includes('work') && !names.includes('dom0'));
  });

  it('refuses an outside qube, an absent one and a missing tier with the same bytes', async () => {
    const results = [];
    for (const name of ['ai-hidden', 'work', 'ai-absent', 'nothing']) {
      results.push(JSON.stringify(await client.callTool({ name: 'qube_state', arguments: { qube: name } })));
      results.push(JSON.stringify(await client.callTool({ name: 'qube_info', arguments: { qube: name } })));
      results.push(JSON.stringify(await client.callTool({ name: 'qube_start', arguments: { qube: name } })));
    }
    results.push(JSON.stringify(await client.callTool({ name: 'qube_pause', arguments: { qube: 'ai-seen' } })));
    results.push(JSON.stringify(await client.callTool({ name: 'qube_run', arguments: { qube: 'ai-seen', argv: ['id'] } })));
    for (const r of results) assert.equal(r, JSON.stringify(REFUSAL));
  });

  it('reads a visible qube and maps a Qubes error to an actionable text, from a dom0 service and from qubesd', async () => {
    const state = await client.callTool({ name: 'qube_state', arguments: { qube: 'ai-box' } });
    assert.deepEqual(state.structuredContent, { qube: 'ai-box', state: 'Halted' });
    const info = await client.callTool({ name: 'qube_info', arguments: { qube: 'ai-box' } });
    const { qube, properties } = info.structuredContent as { qube: string; properties: Record<string, unknown> };
    // Qubes' klass is `class` here as in qube_list, and the qube's name is `qube`, not a property
    assert.deepEqual([qube, properties['class'], 'klass' in properties, 'name' in properties], ['ai-box', 'AppVM', false, false]);
    const down = await client.callTool({ name: 'qube_shutdown', arguments: { qube: 'ai-box' } });
    assert.equal(down.isError, true);
    assert.equal((down.content[0] as { text: string }).text, 'The operation failed (not_running): the qube is not running');
    const paused = await client.callTool({ name: 'qube_pause', arguments: { qube: 'ai-box' } });
    assert.equal(paused.isError, true);
    assert.equal((paused.content[0] as { text: string }).text, 'The qube is not running.');
  });

  it('starts a qube and runs a command in it', { skip: findBwrap() === undefined ? 'needs bwrap' : false }, async () => {
    const start = await client.callTool({ name: 'qube_start', arguments: { qube: 'ai-box' } });
    assert.deepEqual(start.structuredContent, { qube: 'ai-box', state: 'Running' });
    const run = await client.callTool({ name: 'qube_run', arguments: { qube: 'ai-box', shell: 'echo out; echo err >&2; exit 5' } });
    const s = run.structuredContent as { exit_status: number; stdout: string; stderr: string };
    assert.deepEqual([s.exit_status, s.stdout, s.stderr], [5, 'out\n', 'err\n']);
    const write = await client.callTool({ name: 'qube_write_file', arguments: { qube: 'ai-box', path: '/root/f', content: '/w==', encoding: 'base64' } });
    assert.deepEqual(write.structuredContent, { path: '/root/f', size: 1 });
    const read = await client.callTool({ name: 'qube_read_file', arguments: { qube: 'ai-box', path: '/root/f' } });
    assert.deepEqual(read.structuredContent, { path: '/root/f', size: 1, offset: 0, length: 1, truncated: false, encoding: 'base64', content: '/w==' });
    const kill = await client.callTool({ name: 'qube_kill', arguments: { qube: 'ai-box' } });
    assert.deepEqual(kill.structuredContent, { qube: 'ai-box' });
  });

  it('ends a cancelled command inside the qube at once, not at its timeout', { skip: findBwrap() === undefined ? 'needs bwrap' : false }, async () => {
    await client.callTool({ name: 'qube_start', arguments: { qube: 'ai-box' } });
    // an argv no other process has, to find the command from the host
    const argv = ['sleep', `3000.${process.pid}${Date.now() % 100_000}`];
    const ac = new AbortController();
    const pending = client.callTool({ name: 'qube_run', arguments: { qube: 'ai-box', argv, timeout_seconds: 3600 } }, { signal: ac.signal });
    pending.catch(() => undefined);
    try {
      await within(60_000, () => processesRunning(argv).length === 1, 'the command in the qube');
      ac.abort();
      await assert.rejects(pending);
      await within(60_000, () => processesRunning(argv).length === 0, 'the command to end');
    } finally {
      for (const pid of processesRunning(argv)) process.kill(pid, 'SIGKILL');
      await client.callTool({ name: 'qube_kill', arguments: { qube: 'ai-box' } });
    }
  });

  it('runs a command in a fresh disposable and leaves none behind', { skip: findBwrap() === undefined ? 'needs bwrap' : false }, async () => {
    const r = await client.callTool({ name: 'qube_run_disposable', arguments: { disposable_template: 'ai-dvm', name: 'ai-once', argv: ['hostname'] } });
    const s = r.structuredContent as { exit_status: number; stdout: string; name: string; removed: boolean };
    assert.deepEqual([s.exit_status, s.stdout, s.name, s.removed], [0, 'ai-once\n', 'ai-once', true]);
    const list = await client.callTool({ name: 'qube_list', arguments: {} });
    assert.ok(!(list.structuredContent as { qubes: { qube: string }[] }).qubes.some((q) => q.qube === 'ai-once'));
  });
});
