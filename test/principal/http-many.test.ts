/**
 * Twenty SDK clients at once over Streamable HTTP against the simulated host:
 * every answer is right, nothing is shared between them, and the runner never
 * has more qrexec children at once than its bound.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { simClientOptions } from '../../src/cli/sim-principal.js';
import { startHttp, type RunningHttp } from '../../src/principal/http.js';
import { QrexecRunner } from '../../src/principal/qrexec.js';
import { TOOLS } from '../../src/principal/tools/index.js';
import { envServiceMode, startSimHost, type SimHost } from '../../src/sim/host.js';
import type { Fleet } from '../../src/sim/fleet.js';
import { OPEN_GATE } from '../../src/sim/open-gate.js';

const CLIENTS = 20;
const BOUND = 4;

const FLEET: Fleet = {
  qubes: [
    { name: 'tpl', klass: 'TemplateVM' },
    { name: 'ai-tpl', klass: 'TemplateVM', tags: ['ai-managed', 'ai-full'] },
    { name: 'mcp-control', klass: 'AppVM', template: 'tpl', properties: { netvm: null } },
    { name: 'ai-a', klass: 'AppVM', template: 'ai-tpl', tags: ['ai-managed', 'ai-full'], properties: { netvm: null } },
    { name: 'ai-b', klass: 'AppVM', template: 'ai-tpl', tags: ['ai-managed'], properties: { netvm: null } },
    { name: 'work', klass: 'AppVM', template: 'tpl', properties: { netvm: null } },
  ],
};

describe('many clients over Streamable HTTP', () => {
  let dir: string;
  let host: SimHost;
  let runner: QrexecRunner;
  let http: RunningHttp;
  let peak = 0;
  let spawned = 0;
  const token = randomBytes(32).toString('hex');

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'qmcp-http-many-'));
    // Served by the resident process unless QMCP_DOM0_SERVICE_MODE says otherwise: this is about many clients over HTTP, not the
    // per-call executable (test/boundary/invariants.test.ts), which starts a Node process for every dom0 call.
    host = await startSimHost({ dir, fleet: FLEET, install: true, serviceMode: envServiceMode() ?? 'resident', initialSettings: { principal: 'mcp-control', namePrefix: 'ai-', poolCapBytes: 2 ** 40, gate: OPEN_GATE } });
    runner = new QrexecRunner({ ...simClientOptions(dir), concurrency: BOUND });
    // count the children the runner really has alive at each spawn
    const inner = runner as unknown as { spawnOne: (call: unknown) => Promise<unknown> };
    const spawnOne = inner.spawnOne.bind(runner);
    inner.spawnOne = (call) => {
      spawned++;
      const p = spawnOne(call);
      peak = Math.max(peak, runner.active);
      return p;
    };
    http = await startHttp(runner, { host: '127.0.0.1', port: 0, token });
  });
  after(async () => {
    await http?.close();
    runner?.close();
    await host?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('answers every client correctly with no more children than the bound', async () => {
    const one = async (i: number): Promise<{ tools: string[]; qubes: string[]; cursor: string }> => {
      const client = new Client({ name: `c${i}`, version: '0' });
      await client.connect(new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${http.port}/mcp`), { requestInit: { headers: { Authorization: `Bearer ${token}` } } }));
      try {
        // one request at a time per client: twenty in flight, under the server's request cap
        const listed = await client.listTools();
        const qubes = await client.callTool({ name: 'qube_list', arguments: {} });
        const stream = await client.callTool({ name: 'events_poll', arguments: { wait_seconds: 1 } });
        return {
          tools: listed.tools.map((t) => t.name),
          qubes: (qubes.structuredContent as { qubes: { qube: string }[] }).qubes.map((q) => q.qube),
          cursor: (stream.structuredContent as { cursor: string }).cursor,
        };
      } finally {
        await client.close();
      }
    };
    const results = await Promise.all(Array.from({ length: CLIENTS }, (_, i) => one(i)));
    for (const [i, r] of results.entries()) {
      assert.deepEqual(r.tools, TOOLS.map((t) => t.name), `client ${i}`);
      assert.deepEqual(r.qubes, ['ai-a', 'ai-b', 'ai-tpl'], `client ${i}`);
    }
    // every client got its own event stream
    assert.equal(new Set(results.map((r) => r.cursor)).size, CLIENTS);
    assert.ok(spawned >= CLIENTS, `spawned ${spawned}`);
    // the bound was reached under this load and never passed
    assert.equal(peak, BOUND);
  });
});
