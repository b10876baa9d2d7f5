/**
 * The demo's two agents on one simulated host (docs/principals.md), each
 * through its own MCP server: each `qube_list` shows its own world only; a
 * copy from one world into the other's qube answers byte for byte as a
 * copy into a name that does not exist; a lease the second agent's create
 * took runs out into a tombstone on a simulated clock; every audit entry of
 * an agent's call names its principal. The weakened variants, a dom0 that
 * serves every caller with the first principal's settings and one whose
 * intents name no principal, are caught.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { Client } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { InMemoryTransport, type CallToolResult } from '@modelcontextprotocol/server';
import { simRunner } from '../../src/cli/sim-principal.js';
import { auditLogPath, openAudit } from '../../src/dom0/audit/index.js';
import { acquireBudgetLock } from '../../src/dom0/create/lock.js';
import { readWriteSettings } from '../../src/dom0/create/settings.js';
import { BUNDLE_DIR } from '../../src/dom0/install/index.js';
import { expireLeases } from '../../src/dom0/leases/expire.js';
import { Qubesd } from '../../src/dom0/qubesd.js';
import { createServer } from '../../src/principal/server.js';
import { demoFleet } from '../../src/sim/demo-fleet.js';
import { DEMO_SECOND, DEMO_SETTINGS, demoPrincipals } from '../../src/sim/demo-settings.js';
import { dom0Root, envServiceMode, startSimHost } from '../../src/sim/host.js';
import { OPEN_GATE } from '../../src/sim/open-gate.js';
import { findBwrap } from '../../src/sim/sandbox/index.js';

const QMCP = fileURLToPath(new URL('../../../bin/qmcp.js', import.meta.url));
const A = DEMO_SETTINGS['principal'] as string;
const B = DEMO_SECOND['principal'] as string;
const hasBwrap = findBwrap() !== undefined;

/** A guard of the installed dom0 bundle and its weakened text, replaced there before the first call. */
interface Weakening {
  readonly file: string;
  readonly guard: string;
  readonly weakened: string;
}
/** Every caller served with the first principal's settings (its world), under its own name. */
const FIRSTS: Weakening = {
  file: 'service/config.js',
  guard: 'principals.list.find((s) => s.principal === caller) ?? principals.list[0]',
  weakened: 'principals.list[0] && caller !== undefined ? { ...principals.list[0], principal: caller } : principals.list[0]',
};
/** A call's intent in the audit log without the principal that made it. */
const ANONYMOUS: Weakening = { file: 'service/run.js', guard: 'const fields = { principal: caller,', weakened: "const fields = { principal: '',"  };

interface Agent {
  call(name: string, args: Record<string, unknown>): Promise<CallToolResult>;
  ok<T>(name: string, args: Record<string, unknown>): Promise<T>;
  close(): Promise<void>;
}

function agentOf(client: Client): Agent {
  const call = async (name: string, args: Record<string, unknown>): Promise<CallToolResult> => (await client.callTool({ name, arguments: args })) as CallToolResult;
  return {
    call,
    async ok<T>(name: string, args: Record<string, unknown>): Promise<T> {
      const r = await call(name, args);
      assert.notEqual(r.isError, true, `${name}: ${JSON.stringify(r.content)}`);
      return r.structuredContent as T;
    },
    close: () => client.close(),
  };
}

const listed = async (agent: Agent): Promise<{ qubes: string[]; sinks: string[] }> => {
  const r = await agent.ok<{ qubes: { qube: string }[]; sinks: string[] }>('qube_list', {});
  return { qubes: r.qubes.map((q) => q.qube).sort(), sinks: [...r.sinks].sort() };
};
const tombstones = async (agent: Agent): Promise<string[]> => (await agent.ok<{ tombstones: { qube: string }[] }>('tombstone_list', {})).tombstones.map((t) => t.qube);

/** The demo host with its two principals, its dom0 bundle weakened by WEAKENING if given. */
async function scenario(weakening?: Weakening): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'qmcp-principals-'));
  // the gate open for the first agent: its gated calls are walked elsewhere; a weakened bundle is run per call (read
  // afresh after the edit below), the real one by the resident process unless the run asks for a process per call
  const serviceMode = weakening ? 'per-call' : (envServiceMode() ?? 'resident');
  const host = await startSimHost({ dir, fleet: demoFleet(), install: true, serviceMode, initialSettings: demoPrincipals({ ...DEMO_SETTINGS, gate: OPEN_GATE }) });
  const agents: Agent[] = [];
  try {
    if (weakening) {
      // a service call runs the bundle afresh (per-call), so the copy read from here on is the weakened one
      const file = join(dom0Root(dir), BUNDLE_DIR, 'dom0', weakening.file);
      const text = await readFile(file, 'utf8');
      if (text.split(weakening.guard).length !== 2) throw new Error(`the guard is not in the installed ${weakening.file} exactly once`);
      await writeFile(file, text.replace(weakening.guard, weakening.weakened));
    }
    // the first agent in process, the second through `qmcp serve --sim DIR --principal NAME`
    const [serverSide, clientSide] = InMemoryTransport.createLinkedPair();
    await createServer(simRunner(dir)).connect(serverSide);
    const clientA = new Client({ name: 'agent-a', version: '0' });
    await clientA.connect(clientSide);
    const agentA = agentOf(clientA);
    agents.push(agentA);
    const clientB = new Client({ name: 'agent-b', version: '0' });
    await clientB.connect(new StdioClientTransport({ command: process.execPath, args: [QMCP, 'serve', '--sim', dir, '--principal', B], stderr: 'ignore' }));
    const agentB = agentOf(clientB);
    agents.push(agentB);

    // each agent's list is its own world
    assert.deepEqual(await listed(agentB), { qubes: ['pt-box', 'pt-debian-tpl', 'pt-egress'], sinks: ['pt-dump'] });
    const worldA = await listed(agentA);
    assert.ok(worldA.qubes.includes('ai-exec-box') && !worldA.qubes.some((q) => q.startsWith('pt-')), worldA.qubes.join(','));
    assert.deepEqual(worldA.sinks, ['ai-dump']);

    // about the other's qube, or into it: as about a name that does not exist, byte for byte
    const pairs: [Agent, string, Record<string, unknown>, string, string][] = [
      [agentA, 'qube_info', {}, 'pt-box', 'pt-nothing'],
      [agentB, 'qube_info', {}, 'ai-exec-box', 'ai-nothing'],
      [agentA, 'qube_info', {}, B, 'no-such-qube'],
    ];
    if (hasBwrap) {
      const copy = { source: 'ai-exec-box', paths: ['/etc/os-release'] };
      pairs.push([agentA, 'qube_copy', copy, 'pt-box', 'pt-nothing'], [agentA, 'qube_copy', copy, 'pt-dump', 'no-such-qube'], [agentA, 'qube_copy', copy, B, 'no-such-qube']);
    }
    for (const [agent, tool, args, theirs, absent] of pairs) {
      const key = tool === 'qube_copy' ? 'target' : 'qube';
      const about = await agent.call(tool, { ...args, [key]: theirs });
      const none = await agent.call(tool, { ...args, [key]: absent });
      assert.equal(about.isError, true, `${tool} ${theirs}: ${JSON.stringify(about)}`);
      assert.equal(JSON.stringify(about).replaceAll(theirs, '*'), JSON.stringify(none).replaceAll(absent, '*'), `${tool} ${theirs} answers otherwise than ${absent}`);
    }

    // the second agent's create takes its principal's lease (1h), which the first's (8h) does not touch
    await agentB.ok('qube_create', { name: 'pt-scan', template: 'pt-debian-tpl' });
    const { properties } = await agentB.ok<{ properties: { lease_expires: string } }>('qube_info', { qube: 'pt-scan' });
    const at = new Date(properties.lease_expires);
    assert.ok(!Number.isNaN(at.getTime()), properties.lease_expires);
    const root = dom0Root(dir);
    const expire = async (principal: string, now: Date): Promise<string[]> => {
      const ops = { qubesd: new Qubesd(host.qubesd.socketPath), settings: readWriteSettings(root, () => undefined, principal), audit: openAudit({ root }), lock: () => acquireBudgetLock(root, 30_000) };
      return (await expireLeases(ops, now)).expired;
    };
    const later = new Date(at.getTime() + 1000);
    assert.deepEqual(await expire(B, new Date(at.getTime() - 1000)), [], 'not before its time');
    assert.deepEqual(await expire(A, later), [], "the first principal's reaper step ends nothing of the second's world");
    assert.deepEqual(await expire(B, later), ['pt-scan']);
    assert.ok(!(await listed(agentB)).qubes.includes('pt-scan'));
    assert.deepEqual(await tombstones(agentB), ['pt-scan']);
    assert.deepEqual(await tombstones(agentA), []);

    // each agent's calls are audited under its own principal; the reaper's under its own name
    const entries = (await readFile(auditLogPath(root), 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l) as { kind: string; principal?: string; operation?: string; qubes?: string[] });
    const creates = entries.filter((e) => e.kind === 'intent' && e.operation === 'create');
    assert.deepEqual(creates.map((e) => [e.principal, e.qubes?.includes('pt-debian-tpl')]), [[B, true]], JSON.stringify(entries.slice(-12)));
    const refusedBy = new Set(entries.filter((e) => e.kind === 'refusal').map((e) => e.principal));
    assert.ok(refusedBy.has(A) && refusedBy.has(B), 'the refusals of each agent name it');
    const named = new Set(entries.flatMap((e) => (e.principal === undefined ? [] : [e.principal])));
    assert.deepEqual([...named].sort(), [A, B, 'qmcp-reaper'].sort(), 'every entry that names a principal names one of the machine');
  } finally {
    for (const agent of agents) await agent.close();
    await host.close();
    await rm(dir, { recursive: true, force: true });
  }
}

test("two agents on the demo host: each lists its own world, the other's qubes answer as absent, a lease runs out on a simulated clock", async () => {
  await scenario();
});

test("weakened: a dom0 serving every caller with the first principal's settings is caught", async () => {
  await assert.rejects(scenario(FIRSTS), assert.AssertionError);
});

test('weakened: intents that name no principal are caught', async () => {
  await assert.rejects(scenario(ANONYMOUS), assert.AssertionError);
});
