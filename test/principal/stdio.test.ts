import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { isAlive, makeFakeQrexec, sleeperPids, until, type FakeQrexec } from './fake-qrexec.js';

const QMCP = fileURLToPath(new URL('../../../bin/qmcp.js', import.meta.url));

describe('qmcp serve over stdio', () => {
  let fake: FakeQrexec;
  before(async () => {
    fake = await makeFakeQrexec();
  });
  after(async () => {
    await fake.cleanup();
  });

  for (const era of ['legacy', 'modern'] as const) it(`serves a ${era} SDK client, sends progress, and a cancelled call kills its child`, async () => {
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [QMCP, 'serve', '--qrexec-client', fake.client],
      env: fake.env as Record<string, string>,
      stderr: 'pipe',
    });
    const client = new Client({ name: 'test', version: '0' }, era === 'modern' ? { versionNegotiation: { mode: { pin: '2026-07-28' } } } : {});
    await client.connect(transport);
    try {
      const { tools } = await client.listTools();
      assert.ok(tools.some((t) => t.name === 'qube_run'));
      const state = await client.callTool({ name: 'qube_state', arguments: { qube: 'ai-work' } });
      assert.deepEqual(state.structuredContent, { qube: 'ai-work', state: 'Running' });

      const known = new Set(await sleeperPids(fake.dir));
      const ac = new AbortController();
      const progress: unknown[] = [];
      const pending = client.callTool({ name: 'qube_run', arguments: { qube: 'ai-sleep', argv: ['sleep', '1000'] } }, {
        signal: ac.signal,
        onprogress: (p) => progress.push(p),
      });
      const settled = assert.rejects(pending);
      let pid = 0;
      await until(async () => {
        pid = (await sleeperPids(fake.dir)).find((p) => !known.has(p)) ?? 0;
        return pid !== 0 && progress.length > 0;
      }, 'the child and a progress notification');
      assert.equal((progress[0] as { message?: string }).message, 'working');
      ac.abort();
      await settled;
      await until(() => !isAlive(pid), 'the cancelled child to die');
    } finally {
      await client.close();
    }
  });

  it('exits when stdin closes, leaving no child behind', async () => {
    const server = spawn(process.execPath, [QMCP, 'serve', '--qrexec-client', fake.client], {
      env: fake.env,
      stdio: ['pipe', 'pipe', 'ignore'],
    });
    const send = (m: unknown): void => void server.stdin.write(JSON.stringify(m) + '\n');
    const known = new Set(await sleeperPids(fake.dir));
    send({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 't', version: '0' } } });
    send({ jsonrpc: '2.0', method: 'notifications/initialized' });
    send({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'qube_run', arguments: { qube: 'ai-sleep', argv: ['sleep', '1000'] } } });
    let pid = 0;
    await until(async () => {
      pid = (await sleeperPids(fake.dir)).find((p) => !known.has(p)) ?? 0;
      return pid !== 0;
    }, 'the child to start');
    const exited = once(server, 'exit');
    server.stdin.end();
    const [code] = (await exited) as [number | null];
    assert.equal(code, 0);
    await until(() => !isAlive(pid), 'the orphaned child to die');
  });
});
