// qmcp dom0 doctor on a simulated host: a healthy install reports healthy,
// and each planted fault is reported and flips the verdict.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { auditLogPath, openAudit } from '../../src/dom0/audit/index.js';
import { TIMER_WANTS_LINK } from '../../src/dom0/install/index.js';
import { runDoctor } from '../../src/dom0/operator/doctor.js';
import type { DoctorReport } from '../../src/dom0/operator/doctor.js';
import { policyFilePath } from '../../src/dom0/operator/index.js';
import { Qubesd } from '../../src/dom0/qubesd.js';
import { settingsPath } from '../../src/shared/model/index.js';
import { dom0Root, startSimHost } from '../../src/sim/host.js';
import type { SimHost } from '../../src/sim/host.js';
import type { FleetQube } from '../../src/sim/fleet.js';
import { qrexecCollect } from '../../src/sim/qrexec/index.js';
import { readWriteSettings } from '../../src/dom0/create/settings.js';
import { explain, formatExplain } from '../../src/dom0/operator/explain.js';
import { restoreTombstone } from '../../src/dom0/tombstones/operator.js';
import { OPEN_GATE } from '../../src/sim/open-gate.js';
import { renderPolicy, stampSettings } from '../../src/dom0/install/policy.js';
import { acquireBudgetLock } from '../../src/dom0/create/lock.js';

const QMCP = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bin', 'qmcp.js');
const GiB = 1024 ** 3;
const tmp = mkdtempSync(join(tmpdir(), 'qmcp-doctor-'));
let host: SimHost;
let root: string;
let admin: Qubesd;

const umbrella = (name: string, template: string, tags: string[], properties: Record<string, unknown> = {}): FleetQube => ({
  name,
  klass: 'AppVM',
  template,
  label: 'red',
  tags: ['ai-managed', ...tags],
  properties: { netvm: null, default_dispvm: null, ...properties },
});

before(async () => {
  host = await startSimHost({
    dir: join(tmp, 'host'),
    install: true,
    initialSettings: { principal: 'mcp-control', mode: 'least-privilege', poolCapBytes: 100 * GiB, privateCapBytes: 4 * GiB, tombstoneRetentionDays: 7, egressQube: null, gate: OPEN_GATE },
    fleet: {
      properties: { default_netvm: null, default_dispvm: null, default_template: 'debian' },
      qubes: [
        { name: 'debian', klass: 'TemplateVM', label: 'black' },
        { name: 'mcp-control', klass: 'AppVM', template: 'debian', label: 'purple', properties: { netvm: null } },
        { name: 'vault', klass: 'AppVM', template: 'debian', label: 'black', properties: { netvm: null } },
        { name: 'work', klass: 'AppVM', template: 'debian', label: 'blue', properties: { netvm: null } },
        { name: 'ai-outside', klass: 'AppVM', template: 'debian', label: 'red', properties: { netvm: null } },
        { name: 'drop', klass: 'AppVM', template: 'debian', label: 'red', tags: ['ai-dump'], properties: { netvm: null } },
        { name: 'ai-tpl', klass: 'TemplateVM', label: 'black', tags: ['ai-managed', 'ai-full'] },
        umbrella('ai-box', 'ai-tpl', ['ai-exec']),
        umbrella('ai-dvm', 'ai-tpl', ['ai-full'], { template_for_dispvms: true }),
        umbrella('ai-read', 'debian', []),
      ],
    },
  });
  root = dom0Root(host.dir);
  admin = new Qubesd(host.qubesd.socketPath);
});

after(async () => {
  await host.close();
  rmSync(tmp, { recursive: true, force: true });
});

function doctor(): Promise<DoctorReport> {
  return runDoctor({ root, qubesdSocket: host.qubesd.socketPath });
}

function failures(r: DoctorReport): string[] {
  return r.checks.filter((c) => c.status === 'FAIL').map((c) => `${c.check}: ${c.message}`);
}

/** Plants a fault, expects doctor to report it (a FAIL matching `expect`), then undoes it and expects health again. */
async function planted(expect: RegExp, plant: () => Promise<void> | void, undo: () => Promise<void> | void): Promise<void> {
  await plant();
  const r = await doctor();
  try {
    assert.equal(r.healthy, false, `not reported: ${expect}`);
    assert.ok(failures(r).some((f) => expect.test(f)), `${expect} not among ${JSON.stringify(failures(r))}`);
  } finally {
    await undo();
  }
  const back = await doctor();
  assert.deepEqual(failures(back), [], 'healthy again once undone');
}

function run(args: string[]): Promise<{ status: number; stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [QMCP, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.on('error', reject);
    child.on('close', (code) => resolve({ status: code ?? -1, stdout: Buffer.concat(out).toString() }));
  });
}

test('a healthy install reports healthy; the reserved-prefix residual is a note', async () => {
  const r = await doctor();
  assert.deepEqual(failures(r), []);
  assert.equal(r.healthy, true);
  const prefix = r.checks.find((c) => c.check === 'prefix');
  assert.equal(prefix?.status, 'note');
  assert.match(prefix?.message ?? '', /ai-outside/);
  for (const c of ['install', 'model', 'policy', 'settings', 'readable', 'audit-log', 'audit-chain', 'reaper', 'principal', 'hybrids', 'elevation', 'boundary', 'half-created', 'tombstones']) {
    assert.ok(r.checks.some((x) => x.check === c && x.status === 'ok'), `check ${c} ran and passed`);
  }
  const cli = await run(['dom0', 'doctor', '--root', root, '--qubesd-socket', host.qubesd.socketPath]);
  assert.equal(cli.status, 0, cli.stdout);
  assert.match(cli.stdout, /^ok {4}install: /m);
  assert.match(cli.stdout, /^note {2}prefix: /m);
  assert.match(cli.stdout, /^healthy$/m);
  const json = await run(['dom0', 'doctor', '--root', root, '--qubesd-socket', host.qubesd.socketPath, '--json']);
  assert.equal((JSON.parse(json.stdout) as DoctorReport).healthy, true);
  assert.equal((await run(['dom0', 'doctor', '--bogus'])).status, 2);
});

test('an edited policy, a bad setting and a missing timer link are reported', async () => {
  const policy = policyFilePath(root);
  const good = readFileSync(policy);
  await planted(/^install: differ .*30-qmcp\.policy/, () => writeFileSync(policy, Buffer.concat([good, Buffer.from('qubes.VMShell * mcp-control vault allow\n')])), () => writeFileSync(policy, good));
  const settings = readFileSync(settingsPath(root), 'utf8');
  const bad = JSON.stringify({ ...(JSON.parse(settings) as object), mode: 'bogus' });
  await planted(/^settings: mode: must be compat or least-privilege/, () => writeFileSync(settingsPath(root), bad), () => writeFileSync(settingsPath(root), settings));
  const link = join(root, TIMER_WANTS_LINK);
  await planted(/^reaper: reaper timer not enabled/, () => unlinkSync(link), () => symlinkSync('/etc/systemd/system/qmcp-reaper.timer', link));
});

test('a broken audit chain is reported', async () => {
  await openAudit({ root }).operator({ principal: 'dom0', operation: 'mode', result: 'ok' });
  await openAudit({ root }).operator({ principal: 'dom0', operation: 'tier', result: 'ok' });
  const log = auditLogPath(root);
  const good = readFileSync(log, 'utf8');
  await planted(/^audit-chain: audit chain broken/, () => writeFileSync(log, good.replace('"tier"', '"mode"')), () => writeFileSync(log, good));
});

test('hybrids, two elevation tags, an elevation tag without the umbrella and half-created qubes are reported', async () => {
  const tag = (q: string, t: string) => admin.call('admin.vm.tag.Set', q, t);
  const untag = (q: string, t: string) => admin.call('admin.vm.tag.Remove', q, t);
  await planted(/^hybrids: .*drop/, () => tag('drop', 'ai-managed').then(() => undefined), () => untag('drop', 'ai-managed').then(() => undefined));
  await planted(/^elevation: .*ai-box/, () => tag('ai-box', 'ai-full').then(() => undefined), () => untag('ai-box', 'ai-full').then(() => undefined));
  await planted(/^elevation: an elevation tag without ai-managed .*: vault/, () => tag('vault', 'ai-exec').then(() => undefined), () => untag('vault', 'ai-exec').then(() => undefined));
  await planted(/^half-created: ai-box: carries qmcp-incomplete/, () => tag('ai-box', 'qmcp-incomplete').then(() => undefined), () => untag('ai-box', 'qmcp-incomplete').then(() => undefined));
  await planted(
    /^half-created: ai-dvm: disposable template held mid-create; check it, then remove the qmcp-incomplete tag and the prohibit-start feature/,
    async () => {
      await tag('ai-dvm', 'qmcp-incomplete');
      await admin.call('admin.vm.feature.Set', 'ai-dvm', 'prohibit-start', '1');
    },
    async () => {
      await untag('ai-dvm', 'qmcp-incomplete');
      await admin.call('admin.vm.feature.Remove', 'ai-dvm', 'prohibit-start');
    },
  );
  await planted(/^half-created: marked qmcp-rollback-failed: ai-read/, () => tag('ai-read', 'qmcp-rollback-failed').then(() => undefined), () => untag('ai-read', 'qmcp-rollback-failed').then(() => undefined));
  const marker = join(root, 'var', 'lib', 'qmcp', 'rollback-failed', 'ai-gone');
  await planted(
    /^rollback: .*ai-gone/,
    () => {
      mkdirSync(dirname(marker), { recursive: true });
      writeFileSync(marker, '{}\n');
    },
    () => rmSync(dirname(marker), { recursive: true }),
  );
});

test('dependencies across the boundary are reported', async () => {
  await planted(
    /^boundary: outside qubes depend on umbrella qubes .*work uses ai-dvm as default_dispvm/,
    () => admin.call('admin.vm.property.Set', 'work', 'default_dispvm', 'ai-dvm').then(() => undefined),
    () => admin.call('admin.vm.property.Set', 'work', 'default_dispvm', '').then(() => undefined),
  );
  // ai-box drops to read-only while its template stays full
  await planted(
    /^boundary: the agent can run code in a template behind .*ai-tpl \(full\) is the template of read-only ai-box/,
    () => admin.call('admin.vm.tag.Remove', 'ai-box', 'ai-exec').then(() => undefined),
    () => admin.call('admin.vm.tag.Set', 'ai-box', 'ai-exec').then(() => undefined),
  );
});

test("dom0's tag-created-vm-with naming the umbrella or the sink is reported (every create refuses then)", async () => {
  for (const tag of ['ai-managed', 'ai-dump']) {
    await planted(
      new RegExp(`^creator-tags: dom0's tag-created-vm-with feature names ${tag}`),
      () => admin.call('admin.vm.feature.Set', 'dom0', 'tag-created-vm-with', `op-auto ${tag}`).then(() => undefined),
      () => admin.call('admin.vm.feature.Remove', 'dom0', 'tag-created-vm-with').then(() => undefined),
    );
  }
});

test("the agent's ordinary removes leave doctor healthy, and explain shows each tombstone as one", async () => {
  const principal = host.router.socketFor('mcp-control');
  // a disposable template on the agent's template: its tombstone still uses ai-tpl as template
  const removed = await qrexecCollect(principal, '@adminvm', 'qmcp.Remove+ai-dvm', '');
  assert.equal(removed.status, 0, removed.stderr.toString());
  try {
    assert.deepEqual(failures(await doctor()), []);
    const report = await explain({ root, qubesdSocket: host.qubesd.socketPath });
    const row = report.rows.find((r) => r.qube === 'ai-dvm');
    assert.equal(row?.standing, 'tombstone');
    assert.equal(report.rows.find((r) => r.qube === 'vault')?.standing, 'not visible');
    assert.match(formatExplain(report), /^ai-dvm +AppVM +tombstone /m);
  } finally {
    await restoreTombstone({ qubesd: admin, settings: readWriteSettings(root, () => undefined), audit: openAudit({ root }), lock: () => acquireBudgetLock(root, 30_000) }, 'ai-dvm');
    await admin.call('admin.vm.tag.Set', 'ai-dvm', 'ai-full');
  }
  assert.deepEqual(failures(await doctor()), []);
});

/** Rewrites the installed settings with GATE and renders the policy from them, as install does. */
function installGate(gate: unknown): void {
  const raw = JSON.parse(readFileSync(settingsPath(root), 'utf8')) as Record<string, unknown>;
  const stamped = stampSettings({ ...raw, gate });
  writeFileSync(policyFilePath(root), renderPolicy(stamped.settings));
  writeFileSync(settingsPath(root), stamped.text);
}

test('the gate as installed, where Qubes shows its dialog, and a malformed gate as a note that asks more', async () => {
  const check = (r: DoctorReport, name: string) => r.checks.find((c) => c.check === name);
  try {
    installGate({});
    let r = await doctor();
    assert.deepEqual(failures(r), []);
    assert.match(check(r, 'gate')?.message ?? '', /^the operator is asked for: copy, port\.forward in Qubes' dialog .*; shutdown, kill, firewall\.set, remove, property\.set, feature\.set, device\.attach, device\.detach by the dom0 services/);
    assert.deepEqual([check(r, 'dialog')?.status, check(r, 'dialog')?.message], ['ok', "Qubes shows its dialog for copy, port.forward in dom0"]);
    await admin.call('admin.vm.property.Set', 'mcp-control', 'guivm', '');
    try {
      r = await doctor();
      assert.deepEqual([check(r, 'dialog')?.status, r.healthy], ['note', true]);
      assert.match(check(r, 'dialog')?.message ?? '', /^mcp-control has no GUI qube: Qubes refuses every call its policy asks about/);
    } finally {
      await admin.call('admin.vm.property.Reset', 'mcp-control', 'guivm');
    }
    installGate({ kill: 'allow', copy: 'maybe' });
    r = await doctor();
    assert.deepEqual(failures(r), [], 'a malformed gate only asks more');
    assert.ok(r.checks.some((c) => c.check === 'settings' && c.status === 'note' && /^gate: copy must be allow or ask: every operation that can be gated asks/.test(c.message)));
    assert.equal(check(r, 'gate')?.status, 'note');
    assert.match(check(r, 'gate')?.message ?? '', /asked for: run, file\.write, job\.start, job\.kill, copy, port\.forward, firewall\.reload, pause, unpause in Qubes' dialog/);
  } finally {
    installGate(OPEN_GATE);
  }
  const open = await doctor();
  assert.deepEqual(failures(open), []);
  assert.equal(check(open, 'dialog'), undefined, 'no dialog to show when nothing the policy decides asks');
});
