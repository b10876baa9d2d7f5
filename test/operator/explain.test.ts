// qmcp dom0 explain against the demo fleet, in both modes, checked against
// what calls from the principal through the simulated qrexec really do.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawn } from 'node:child_process';
import { PassThrough } from 'node:stream';
import { openAudit } from '../../src/dom0/audit/index.js';
import { explain, formatExplain } from '../../src/dom0/operator/explain.js';
import type { ExplainReport } from '../../src/dom0/operator/explain.js';
import { policyFilePath, setMode } from '../../src/dom0/operator/index.js';
import { renderPolicy, stampSettings } from '../../src/dom0/install/policy.js';
import { operation, settingsPath } from '../../src/shared/model/index.js';
import type { Mode } from '../../src/shared/model/index.js';
import { demoFleet } from '../../src/sim/demo-fleet.js';
import { DEMO_SETTINGS } from '../../src/sim/demo-settings.js';
import { dom0Root, envServiceMode, startSimHost } from '../../src/sim/host.js';
import type { SimHost } from '../../src/sim/host.js';
import { asExecutableReply, isDom0Service, qrexecCall } from '../../src/sim/qrexec/index.js';
import type { PendingAsk } from '../../src/sim/qrexec/asks.js';
import { askControl } from '../../src/sim/qrexec/asks.js';
import { OPEN_GATE } from '../../src/sim/open-gate.js';
import { within } from '../principal/fake-qrexec.js';

const QMCP = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bin', 'qmcp.js');
const tmp = mkdtempSync(join(tmpdir(), 'qmcp-explain-'));
let host: SimHost;
let root: string;

before(async () => {
  // the gate opened: the cross-check makes calls the demo's gate would hold for an operator; one test gates them itself
  // Resident dom0 services unless QMCP_DOM0_SERVICE_MODE says otherwise (their refusal read as the executable's):
  // explain is checked against what the calls decide, not how a service is started, and per call each starts Node.
  host = await startSimHost({ dir: join(tmp, 'host'), fleet: demoFleet(), install: true, serviceMode: envServiceMode() ?? 'resident', initialSettings: { ...DEMO_SETTINGS, gate: OPEN_GATE } });
  root = dom0Root(host.dir);
});

after(async () => {
  await host.close();
  rmSync(tmp, { recursive: true, force: true });
});

/** True when the principal's call is refused, as qrexec-client-vm shows it. */
async function refused(target: string, service: string): Promise<boolean> {
  const stdin = new PassThrough();
  stdin.end();
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  stdout.on('data', (c: Buffer) => out.push(c));
  stderr.on('data', (c: Buffer) => err.push(c));
  const status = await qrexecCall(host.router.socketFor('mcp-control'), target, service, { stdin, stdout, stderr });
  const raw = { status, stdout: Buffer.concat(out), stderr: Buffer.concat(err) };
  const r = host.resident !== null && isDom0Service(target, service) ? asExecutableReply(raw) : raw;
  return r.status === 126 && r.stderr.toString() === 'Request refused\n';
}

/** Operations that change nothing on a halted qube, so the check leaves the host as it was. */
const PROBES = ['state', 'firewall.get', 'info', 'kill', 'pause', 'unpause', 'firewall.reload'];
const QUBES = ['ai-sandbox', 'ai-exec-box', 'ai-net-box', 'ai-full-box', 'ai-egress', 'ai-dump', 'vault', 'work', 'sys-net'];

async function crossCheck(r: ExplainReport): Promise<void> {
  for (const qube of QUBES) {
    const row = r.rows.find((x) => x.qube === qube);
    assert.ok(row, qube);
    for (const id of PROBES) {
      const op = operation(id);
      const call = op.target === 'dom0-service' ? refused('dom0', `${op.service}${op.argumentIsQube ? `+${qube}` : ''}`) : refused(qube, op.service);
      assert.equal(await call, row.operations[id] === 'deny', `${r.mode}: ${id} on ${qube}: explain says ${row.operations[id]}`);
    }
  }
}

async function switchTo(mode: Mode): Promise<void> {
  await setMode({ root, audit: openAudit({ root }) }, mode);
}

test('least-privilege: tiers as tagged, outside qubes not visible, the sink push-only; calls agree', async () => {
  const r = await explain({ root, qubesdSocket: host.qubesd.socketPath });
  assert.equal(r.mode, 'least-privilege');
  const row = (q: string) => r.rows.find((x) => x.qube === q);
  assert.deepEqual(row('ai-sandbox')?.groups, { see: 'allowed', exec: '—', net: '—', full: '—', copy: 'in (ask)', sink: '—' });
  assert.deepEqual(row('ai-exec-box')?.groups, { see: 'allowed', exec: 'allowed', net: '—', full: '—', copy: 'allowed', sink: '—' });
  assert.deepEqual(row('ai-net-box')?.groups, { see: 'allowed', exec: 'allowed', net: 'allowed', full: '—', copy: 'allowed', sink: '—' });
  assert.deepEqual(row('ai-full-box')?.groups, { see: 'allowed', exec: 'allowed', net: 'allowed', full: 'allowed', copy: 'allowed', sink: '—' });
  assert.equal(row('ai-dump')?.standing, 'sink');
  assert.deepEqual(row('ai-dump')?.groups, { see: '—', exec: '—', net: '—', full: '—', copy: '—', sink: 'allowed' });
  for (const q of ['vault', 'work', 'personal', 'sys-net', 'default-dvm']) {
    assert.equal(row(q)?.standing, 'not visible');
    assert.ok(Object.values(row(q)?.operations ?? { x: 'allow' }).every((c) => c === 'deny'), q);
  }
  assert.ok(!r.rows.some((x) => x.qube === 'mcp-control' || x.qube === 'dom0'));
  const table = formatExplain(r);
  assert.match(table, /^ai-exec-box +AppVM +visible, exec +allowed +allowed +— +— +allowed +—$/m);
  assert.match(table, /^vault +AppVM +not visible( +—){6}$/m);
  await crossCheck(r);
});

test('compat: an untiered umbrella qube is full; calls agree', async () => {
  await switchTo('compat');
  try {
    const r = await explain({ root, qubesdSocket: host.qubesd.socketPath });
    assert.equal(r.mode, 'compat');
    const sandbox = r.rows.find((x) => x.qube === 'ai-sandbox');
    assert.equal(sandbox?.tier, 'full');
    assert.deepEqual(sandbox?.groups, { see: 'allowed', exec: 'allowed', net: 'allowed', full: 'allowed', copy: 'allowed', sink: '—' });
    assert.equal(r.rows.find((x) => x.qube === 'ai-exec-box')?.groups.net, '—', 'an explicit exec tag stays exec');
    await crossCheck(r);
  } finally {
    await switchTo('least-privilege');
  }
});

function run(args: string[]): Promise<{ status: number; stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [QMCP, ...args], { stdio: ['ignore', 'pipe', 'ignore'] });
    const out: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.on('error', reject);
    child.on('close', (code) => resolve({ status: code ?? -1, stdout: Buffer.concat(out).toString() }));
  });
}

test('qmcp dom0 explain: one qube, --json, an unknown qube or no qubesd exits 1, bad usage 2', async () => {
  const socket = ['--root', root, '--qubesd-socket', host.qubesd.socketPath];
  const one = await run(['dom0', 'explain', 'ai-net-box', ...socket, '--json']);
  assert.equal(one.status, 0);
  const r = JSON.parse(one.stdout) as ExplainReport;
  assert.deepEqual(r.rows.map((x) => x.qube), ['ai-net-box']);
  assert.equal(r.rows[0]?.operations['firewall.set'], 'allow');
  assert.equal((await run(['dom0', 'explain', 'nosuch', ...socket])).status, 1);
  assert.equal((await run(['dom0', 'explain', '--root', root, '--qubesd-socket', join(tmp, 'none.sock')])).status, 1);
  assert.equal((await run(['dom0', 'explain', '--help'])).status, 0);
  assert.equal((await run(['dom0', 'explain', 'a', 'b'])).status, 2);
});

test('under a gate, the operations it asks for read ask, and explain names them; a gated call does wait', async () => {
  const raw = readFileSync(settingsPath(root), 'utf8');
  const policy = readFileSync(policyFilePath(root), 'utf8');
  const stamped = stampSettings({ ...(JSON.parse(raw) as object), gate: { ...OPEN_GATE, 'firewall.reload': 'ask', kill: 'ask' } });
  writeFileSync(policyFilePath(root), renderPolicy(stamped.settings));
  writeFileSync(settingsPath(root), stamped.text);
  try {
    const r = await explain({ root, qubesdSocket: host.qubesd.socketPath });
    assert.deepEqual(r.gate, { dialog: ['firewall.reload'], services: ['kill'], malformed: false });
    const row = (q: string) => r.rows.find((x) => x.qube === q);
    assert.deepEqual([row('ai-net-box')?.operations['firewall.reload'], row('ai-net-box')?.operations['firewall.get'], row('ai-net-box')?.groups.net], ['ask', 'allow', 'ask']);
    // a dom0 service asks itself: the policy allows it, the service waits for the operator
    assert.deepEqual([row('ai-exec-box')?.operations['kill'], row('ai-sandbox')?.operations['kill'], row('vault')?.operations['kill']], ['ask', 'deny', 'deny']);
    assert.match(formatExplain(r), /^the operator is asked for: firewall.reload \(Qubes' dialog\); kill \(qmcp dom0 approvals\)$/m);
    // the cell agrees with a call: it waits for the operator, who denies it here
    const call = refused('ai-net-box', 'admin.vm.firewall.Reload');
    let asked: PendingAsk[] = [];
    await within(60_000, async () => {
      const list = await askControl(host.router.askSocket, { op: 'list' });
      asked = list.ok ? (list.asks ?? []) : [];
      return asked.length > 0;
    }, 'the reload to wait');
    assert.deepEqual(asked.map((q) => [q.service, q.target]), [['admin.vm.firewall.Reload', 'ai-net-box']]);
    await askControl(host.router.askSocket, { op: 'deny', id: asked[0]?.id ?? '' });
    assert.equal(await call, true);
  } finally {
    writeFileSync(policyFilePath(root), policy);
    writeFileSync(settingsPath(root), raw);
  }
  assert.deepEqual((await explain({ root, qubesdSocket: host.qubesd.socketPath })).gate, { dialog: [], services: [], malformed: false });
});
