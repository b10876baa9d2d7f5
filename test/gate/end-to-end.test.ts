/**
 * The action gate through the whole simulated host: the real install, a
 * qrexec call from the principal's seat, the dom0 service as its own
 * process, and the operator answering with `qmcp dom0 approvals`.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ApprovalRequest } from '../../src/dom0/gate/store.js';
import { requesterAlive } from '../../src/dom0/gate/store.js';
import type { Fleet } from '../../src/sim/fleet.js';
import { dom0Root, startSimHost } from '../../src/sim/host.js';
import type { SimHost } from '../../src/sim/host.js';
import { ASK_SERVICES, auditEntries, pendingRequest, until } from './helpers.js';

const QMCP = fileURLToPath(new URL('../../../bin/qmcp.js', import.meta.url));

const FLEET: Fleet = {
  properties: { default_netvm: null, default_dispvm: null, default_template: 'tpl' },
  qubes: [
    { name: 'tpl', klass: 'TemplateVM', label: 'black' },
    { name: 'mcp-control', klass: 'AppVM', template: 'tpl', label: 'red' },
    { name: 'ai-box', klass: 'AppVM', template: 'tpl', label: 'blue', tags: ['ai-managed', 'ai-full'], features: { gui: '1' } },
    { name: 'vault', klass: 'AppVM', template: 'tpl', label: 'black', properties: { netvm: null } },
  ],
};

let dir: string;
let host: SimHost;
let root: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'qmcp-gate-e2e-'));
  host = await startSimHost({
    dir: join(dir, 'host'),
    fleet: FLEET,
    install: true,
    initialSettings: { principal: 'mcp-control', mode: 'least-privilege', tombstoneRetentionDays: 7, gate: ASK_SERVICES },
  });
  root = dom0Root(host.dir);
});

after(async () => {
  await host.close();
  await rm(dir, { recursive: true, force: true });
});

interface Run {
  readonly child: ChildProcess;
  readonly done: Promise<{ status: number | null; stdout: string; stderr: string }>;
}

/** A qmcp command as its own process; `input` is its whole stdin unless `keepOpen`. */
function qmcp(args: string[], input = '', keepOpen = false): Run {
  const child = spawn(process.execPath, [QMCP, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout?.on('data', (c: Buffer) => out.push(c));
  child.stderr?.on('data', (c: Buffer) => err.push(c));
  child.stdin?.on('error', () => undefined);
  if (keepOpen) child.stdin?.write(input);
  else child.stdin?.end(input);
  const done = new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
    child.on('close', (status) => resolve({ status, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() }));
  });
  return { child, done };
}

/** The principal's qrexec call to a dom0 service, as qrexec-client-vm in mcp-control makes it. */
function agentCall(service: string, payload: unknown): Run {
  return qmcp(['sim', 'qrexec', '--dir', host.dir, '--as', 'mcp-control', '@adminvm', service], JSON.stringify(payload));
}

const operatorArgs = (): string[] => ['--root', root, '--qubesd-socket', host.qubesd.socketPath];

async function endOf(r: ApprovalRequest): Promise<string[]> {
  return (await auditEntries(root)).filter((e) => e.correlation === r.correlation && e.kind === 'answer').map((e) => e.detail ?? '');
}

const gui = (): string | undefined => host.qubesd.app.vms.get('ai-box')?.features['gui'];

test('the operator lists, shows and allows a waiting call; it completes once', async () => {
  const call = agentCall('qmcp.SetFeature+ai-box', { name: 'gui', value: '0' });
  const r = await pendingRequest(root);
  const list = await qmcp(['dom0', 'approvals', 'list', ...operatorArgs()]).done;
  assert.equal(list.status, 0);
  assert.match(list.stdout, new RegExp(`^${r.id}  "mcp-control"  feature.set  "ai-box"  \\d+s old  lapses ${r.expires}  pending$`, 'm'));
  const show = await qmcp(['dom0', 'approvals', 'show', r.id, ...operatorArgs()]).done;
  assert.equal(show.status, 0);
  assert.match(show.stdout, /^feature "gui": "1" -> "0"$/m);
  assert.match(show.stdout, /^on qube "ai-box" \(AppVM, halted, tier full/m);
  const allow = await qmcp(['dom0', 'approvals', 'allow', r.id, ...operatorArgs()]).done;
  assert.deepEqual([allow.status, allow.stdout], [0, `allowed ${r.id}\n`]);
  const done = await call.done;
  assert.equal(done.status, 0);
  assert.deepEqual(JSON.parse(done.stdout), { name: 'gui', value: '0' });
  assert.equal(gui(), '0');
  const again = await qmcp(['dom0', 'approvals', 'allow', r.id, ...operatorArgs()]).done;
  assert.equal(again.status, 1);
  assert.match(again.stderr, /no such request/);
  assert.equal((await qmcp(['dom0', 'audit', 'verify', '--root', root]).done).status, 0);
});

test('watch shows each request and asks; a refusal reaches the agent as the uniform one', async () => {
  const call = agentCall('qmcp.SetFeature+ai-box', { name: 'gui', value: '1' });
  const r = await pendingRequest(root);
  const watch = await qmcp(['dom0', 'approvals', 'watch', '--once', ...operatorArgs()], 'n\n').done;
  assert.equal(watch.status, 0);
  assert.match(watch.stdout, new RegExp(`request ${r.id}, asked at`));
  assert.match(watch.stdout, /allow\? \[y\/N\] denied/);
  const done = await call.done;
  assert.equal(done.status, 126);
  assert.equal(done.stderr, 'Request refused\n');
  assert.match(done.stdout, /^\n*$/);
  assert.equal(gui(), '0');
  const ends = await endOf(r);
  assert.equal(ends.length, 1);
  assert.match(ends[0] ?? '', /^deny by .+ via watch$/);
});

test('a caller that goes away withdraws its request; nothing changes', async () => {
  const call = agentCall('qmcp.SetFeature+ai-box', { name: 'gui', value: '1' });
  const r = await pendingRequest(root);
  call.child.kill('SIGKILL');
  await call.done;
  await until(async () => (await endOf(r)).length > 0, 'the request withdrawn');
  assert.deepEqual(await endOf(r), ['withdrawn']);
  assert.equal(gui(), '0');
  const allow = await qmcp(['dom0', 'approvals', 'allow', r.id, ...operatorArgs()]).done;
  assert.equal(allow.status, 1);
});

test('SIGTERM withdraws; a service killed outright leaves a stale request nobody can approve', async () => {
  const termed = agentCall('qmcp.SetFeature+ai-box', { name: 'gui', value: '1' });
  const r1 = await pendingRequest(root);
  process.kill(r1.pid, 'SIGTERM');
  const t = await termed.done;
  assert.deepEqual([t.status, t.stderr], [126, 'Request refused\n']);
  assert.deepEqual(await endOf(r1), ['withdrawn']);

  const killed = agentCall('qmcp.SetFeature+ai-box', { name: 'gui', value: '1' });
  const r2 = await pendingRequest(root);
  process.kill(r2.pid, 'SIGKILL');
  await killed.done;
  await until(() => !requesterAlive(r2), 'the service gone');
  const list = await qmcp(['dom0', 'approvals', 'list', ...operatorArgs()]).done;
  assert.match(list.stdout, new RegExp(`^${r2.id} .* stale$`, 'm'));
  const allow = await qmcp(['dom0', 'approvals', 'allow', r2.id, ...operatorArgs()]).done;
  assert.equal(allow.status, 1);
  assert.match(allow.stderr, /is gone/);
  // the next request clears it, and says so in the log
  const next = agentCall('qmcp.SetFeature+ai-box', { name: 'gui', value: '1' });
  const r3 = await pendingRequest(root, (r) => r.id !== r2.id);
  assert.deepEqual(await endOf(r2), ['stale']);
  assert.equal((await qmcp(['dom0', 'approvals', 'deny', r3.id, ...operatorArgs()]).done).status, 0);
  assert.equal((await next.done).status, 126);
  assert.equal(gui(), '0');
  assert.equal((await qmcp(['dom0', 'audit', 'verify', '--root', root]).done).status, 0);
});

test('approvals show names the qube a kill acts on, and a firewall replacement as a diff of its rules', async () => {
  const kill = qmcp(['sim', 'qrexec', '--dir', host.dir, '--as', 'mcp-control', '@adminvm', 'qmcp.Kill+ai-box']);
  const k = await pendingRequest(root, (r) => r.operation === 'kill');
  const killShown = await qmcp(['dom0', 'approvals', 'show', k.id, ...operatorArgs()]).done;
  assert.equal(killShown.status, 0);
  assert.match(killShown.stdout, /^kills qube "ai-box" \(AppVM, halted, tier full.*\) at once, without a clean shutdown$/m);
  assert.equal((await qmcp(['dom0', 'approvals', 'deny', k.id, ...operatorArgs()]).done).status, 0);
  assert.equal((await kill.done).status, 126);

  const rules = 'action=accept dsthost=example.com proto=tcp dstports=443-443\naction=drop\n';
  const set = qmcp(['sim', 'qrexec', '--dir', host.dir, '--as', 'mcp-control', '@adminvm', 'qmcp.FirewallSet+ai-box'], rules);
  const f = await pendingRequest(root, (r) => r.operation === 'firewall.set');
  const setShown = await qmcp(['dom0', 'approvals', 'show', f.id, ...operatorArgs()]).done;
  assert.equal(setShown.status, 0);
  assert.match(setShown.stdout, /^replaces the firewall rules of qube "ai-box" \(AppVM, halted, tier full/m);
  assert.match(setShown.stdout, /^- "action=accept"\n\+ "action=accept dsthost=example.com proto=tcp dstports=443-443"\n\+ "action=drop"$/m);
  assert.equal((await qmcp(['dom0', 'approvals', 'allow', f.id, ...operatorArgs()]).done).status, 0);
  const done = await set.done;
  assert.equal(done.status, 0);
  assert.deepEqual(JSON.parse(done.stdout), { name: 'ai-box', rules: rules.trimEnd().split('\n') });
  assert.deepEqual(host.qubesd.app.vms.get('ai-box')?.firewall, rules.trimEnd().split('\n'));
});
