import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/client';
import { InMemoryTransport, type CallToolResult } from '@modelcontextprotocol/server';
import { effectsOf, modelRank } from '../../src/shared/model/compositions.js';
import { QrexecRunner } from '../../src/principal/qrexec.js';
import { REFUSAL, REFUSAL_TEXT } from '../../src/principal/results.js';
import { createServer } from '../../src/principal/server.js';
import { TOOLS } from '../../src/principal/tools/index.js';
import { makeFakeQrexec, SECRET, type FakeQrexec } from './fake-qrexec.js';

async function connect(runner: QrexecRunner): Promise<Client> {
  const [serverSide, clientSide] = InMemoryTransport.createLinkedPair();
  await createServer(runner).connect(serverSide);
  const client = new Client({ name: 'test', version: '0' });
  await client.connect(clientSide);
  return client;
}

async function call(client: Client, name: string, args: Record<string, unknown>): Promise<CallToolResult> {
  return (await client.callTool({ name, arguments: args })) as CallToolResult;
}

describe('the tool surface', () => {
  let fake: FakeQrexec;
  let client: Client;
  before(async () => {
    fake = await makeFakeQrexec();
    client = await connect(new QrexecRunner({ client: fake.client, env: fake.env }));
  });
  after(async () => {
    await client.close();
    await fake.cleanup();
  });

  it('lists every tool in the model order, with annotations from its operation row', async () => {
    const { tools } = await client.listTools();
    assert.deepEqual(
      tools.map((t) => t.name),
      TOOLS.map((t) => t.name),
    );
    const ranks = TOOLS.map((t) => modelRank(t.operation));
    assert.ok(ranks.every((r, i) => r >= 0 && (i === 0 || r >= (ranks[i - 1] ?? 0))));
    for (const tool of tools) {
      const spec = TOOLS.find((t) => t.name === tool.name);
      assert.ok(spec, tool.name);
      const op = effectsOf(spec.operation);
      assert.equal(tool.annotations?.readOnlyHint, op.readOnly, tool.name);
      assert.equal(tool.annotations?.destructiveHint, op.destructive, tool.name);
      assert.equal(tool.annotations?.idempotentHint, op.idempotent, tool.name);
      assert.equal(tool.annotations?.openWorldHint, op.openWorld, tool.name);
      assert.equal(tool.inputSchema.type, 'object');
      assert.equal(tool.inputSchema['additionalProperties'], false, `${tool.name} input is strict`);
      assert.equal(tool.outputSchema?.type, 'object');
      assert.match(tool.description ?? '', /\S/);
    }
  });

  it('gives the same list and instructions to every client', async () => {
    const other = await connect(new QrexecRunner({ client: '/nonexistent' }));
    assert.equal(JSON.stringify((await other.listTools()).tools), JSON.stringify((await client.listTools()).tools));
    assert.equal(other.getInstructions(), client.getInstructions());
    assert.match(client.getInstructions() ?? '', /untrusted/);
    await other.close();
  });

  it('answers every refusal with the same bytes', async () => {
    const a = await call(client, 'qube_state', { qube: 'ai-refused' });
    const b = await call(client, 'qube_run', { qube: 'outside', argv: ['id'] });
    const c = await call(client, 'qube_start', { qube: 'outside' });
    assert.equal(JSON.stringify(a), JSON.stringify(REFUSAL));
    assert.equal(JSON.stringify(b), JSON.stringify(a));
    assert.equal(JSON.stringify(c), JSON.stringify(a));
    assert.equal(a.isError, true);
    assert.equal((a.content[0] as { text: string }).text, REFUSAL_TEXT);
  });

  it('maps a Qubes exception class to our text, never qubesd\'s', async () => {
    const r = await call(client, 'qube_pause', { qube: 'ai-halted' });
    assert.equal(r.isError, true);
    assert.equal((r.content[0] as { text: string }).text, 'The qube is not running.');
    assert.ok(!JSON.stringify(r).includes(SECRET));
  });

  it('stops a qube through its dom0 service, which says when the qube is not running', async () => {
    const down = await call(client, 'qube_shutdown', { qube: 'ai-work' });
    assert.deepEqual(down.structuredContent, { qube: 'ai-work' });
    const halted = await call(client, 'qube_shutdown', { qube: 'ai-halted' });
    assert.equal(halted.isError, true);
    assert.equal((halted.content[0] as { text: string }).text, 'The operation failed (not_running): the qube is not running');
    const log = await readFile(join(fake.dir, 'calls.log'), 'utf8');
    assert.match(log, /"target":"@adminvm","service":"qmcp.Shutdown\+ai-work"/);
  });

  it('returns structured content with a text copy', async () => {
    const r = await call(client, 'qube_state', { qube: 'ai-work' });
    assert.deepEqual(r.structuredContent, { qube: 'ai-work', state: 'Running' });
    assert.deepEqual(JSON.parse((r.content[0] as { text: string }).text), r.structuredContent);
    const list = await call(client, 'qube_list', {});
    assert.equal((list.structuredContent as { qubes: unknown[] }).qubes.length, 1);
    const fw = await call(client, 'firewall_get', { qube: 'ai-work' });
    assert.deepEqual((fw.structuredContent as { rules: string[] }).rules, ['action=accept dsthost=example.com proto=tcp dstports=443-443', 'action=drop']);
  });

  it('runs a command and separates its streams and status', async () => {
    const r = await call(client, 'qube_run', { qube: 'ai-work', shell: 'echo hello; exit 3' });
    assert.equal(r.isError, undefined);
    assert.deepEqual(r.structuredContent, {
      exit_status: 3,
      timed_out: false,
      stdout: 'hello\n',
      stdout_encoding: 'utf8',
      stdout_truncated: false,
      stdout_bytes: 6,
      stdout_lines: 1,
      stdout_path: null,
      stderr: '',
      stderr_encoding: 'utf8',
      stderr_truncated: false,
      stderr_bytes: 0,
      stderr_lines: 0,
      stderr_path: null,
    });
    const both = await call(client, 'qube_run', { qube: 'ai-work', shell: 'x', argv: ['x'] });
    assert.equal(both.isError, true);
  });

  it('reads binary files as base64', async () => {
    const r = await call(client, 'qube_read_file', { qube: 'ai-work', path: '/bin/x' });
    assert.deepEqual(r.structuredContent, { path: '/bin/x', size: 3, offset: 0, length: 3, truncated: false, encoding: 'base64', content: Buffer.from([0xff, 0, 0x41]).toString('base64') });
  });

  it('maps in-qube error codes to our text, never the qube\'s', async () => {
    const r = await call(client, 'qube_write_file', { qube: 'ai-ro', path: '/etc/x', content: 'x' });
    assert.equal(r.isError, true);
    assert.equal((r.content[0] as { text: string }).text, 'Permission denied inside the qube.');
  });

  it('passes a dom0 service\'s actionable error on', async () => {
    const r = await call(client, 'qube_start', { qube: 'ai-broken' });
    assert.equal(r.isError, true);
    assert.match((r.content[0] as { text: string }).text, /incomplete/);
  });

  it('checks firewall rules before they leave', async () => {
    const bad = await call(client, 'firewall_set', { qube: 'ai-work', rules: ['action=accept\ndsthost=x'] });
    assert.equal(bad.isError, true);
    const good = await call(client, 'firewall_set', { qube: 'ai-work', rules: ['action=accept proto=tcp dstports=443-443 comment=web access', 'action=drop'] });
    assert.deepEqual(good.structuredContent, { qube: 'ai-work', rules: ['action=accept proto=tcp dstports=443-443 comment=web access', 'action=drop'] });
  });

  it('creates no disposable for a command it cannot run', async () => {
    const r = await call(client, 'qube_run_disposable', { disposable_template: 'ai-dvm', name: 'ai-x', argv: ['a'], shell: 'b' });
    assert.equal(r.isError, true);
    const log = await readFile(join(fake.dir, 'calls.log'), 'utf8').catch(() => '');
    assert.ok(!log.includes('qmcp.CreateDisposable'));
  });

  it('never lets the child\'s stderr or a spawn error into a result', async () => {
    const broken = await connect(new QrexecRunner({ client: fake.client + '-missing' }));
    const r = await call(broken, 'qube_list', {});
    assert.equal(r.isError, true);
    assert.ok(!JSON.stringify(r).includes('missing'));
    assert.ok(!JSON.stringify(r).includes('ENOENT'));
    await broken.close();
  });
});
