import { test } from 'node:test';
import { modelHash } from '../../src/shared/model/index.js';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { InstallError, MANIFEST_PATH, installDom0 } from '../../src/dom0/install/index.js';
import { loadPolicyFromRoot, parsePolicy } from '../../src/shared/policy/index.js';
import type { SystemInfo } from '../../src/shared/policy/index.js';
import { dom0InstallCommand } from '../../src/cli/commands/dom0-install.js';

function tempRoot(): string {
  return mkdtempSync(join(tmpdir(), 'qmcp-install-'));
}

/** Every file under dir with its bytes, mode and mtime. */
function snapshotTree(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isSymbolicLink()) out.set(relative(dir, p), `link ${readlinkSync(p)} ${lstatSync(p).mtimeMs}`);
      else {
        const st = statSync(p);
        out.set(relative(dir, p), `${createHash('sha256').update(readFileSync(p)).digest('hex')} ${st.mode} ${st.mtimeMs}`);
      }
    }
  };
  walk(dir);
  return out;
}

const SYSTEM: SystemInfo = {
  domains: {
    dom0: { tags: [], type: 'AdminVM', template_for_dispvms: false, default_dispvm: null, power_state: 'Running', uuid: '00000000-0000-0000-0000-000000000000' },
    'mcp-control': { tags: [], type: 'AppVM', template_for_dispvms: false, default_dispvm: null, power_state: 'Running', uuid: '11111111-1111-1111-1111-111111111111' },
    vault: { tags: [], type: 'AppVM', template_for_dispvms: false, default_dispvm: null, power_state: 'Halted', uuid: '22222222-2222-2222-2222-222222222222' },
  },
};

test('install writes policy, wrappers, bundle, settings, audit log and a manifest of hashes', async () => {
  const root = tempRoot();
  try {
    const report = await installDom0({ root, qubesdSocket: '/run/sim/qubesd.sock' });
    assert.ok(report.files.every((f) => f.status === 'new'));
    const policy = readFileSync(join(root, 'etc/qubes/policy.d/30-qmcp.policy'), 'utf8');
    parsePolicy([{ name: '30-qmcp.policy', text: policy }]);
    const installed = loadPolicyFromRoot(root);
    const allow = installed.evaluate({ service: 'qmcp.List', argument: '', source: 'mcp-control', target: '@adminvm' }, SYSTEM);
    assert.equal(allow.action, 'allow');
    const deny = installed.evaluate({ service: 'qubes.VMShell', argument: '', source: 'mcp-control', target: 'vault' }, SYSTEM);
    assert.equal(deny.action, 'deny');

    const wrapper = join(root, 'etc/qubes-rpc/qmcp.Start');
    assert.equal(statSync(wrapper).mode & 0o777, 0o755);
    const text = readFileSync(wrapper, 'utf8');
    assert.match(text, /^#!\/bin\/sh\n/);
    assert.ok(text.includes(`QMCP_ROOT='${root}'`));
    assert.ok(text.includes(`QMCP_QUBESD_SOCKET='/run/sim/qubesd.sock'`));
    assert.ok(text.includes(`${join(root, 'usr/lib/qmcp/dom0/service-main.js')}'`));
    for (const s of ['qmcp.List', 'qmcp.Info', 'qmcp.PoolFigures', 'qmcp.DeviceList']) assert.ok(existsSync(join(root, 'etc/qubes-rpc', s)));

    assert.ok(existsSync(join(root, 'usr/lib/qmcp/dom0/service-main.js')));
    assert.ok(existsSync(join(root, 'usr/lib/qmcp/shared/names.js')));
    assert.ok(!existsSync(join(root, 'usr/lib/qmcp/sim')), 'only dom0 and shared code reach dom0');
    assert.ok(existsSync(join(root, 'etc/qmcp/settings.json')));
    assert.equal(readFileSync(join(root, 'var/log/qmcp/audit.log'), 'utf8'), '');

    const manifest = JSON.parse(readFileSync(join(root, MANIFEST_PATH), 'utf8')) as { files: { path: string; sha256: string }[] };
    assert.ok(manifest.files.length > 10);
    for (const f of manifest.files) {
      assert.equal(createHash('sha256').update(readFileSync(join(root, f.path))).digest('hex'), f.sha256, f.path);
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('a second install changes nothing', async () => {
  const root = tempRoot();
  try {
    await installDom0({ root, qubesdSocket: '/x.sock' });
    const before = snapshotTree(root);
    const report = await installDom0({ root, qubesdSocket: '/x.sock' });
    assert.deepEqual(report.files.filter((f) => f.status !== 'unchanged'), []);
    assert.deepEqual(report.backups, []);
    assert.deepEqual(snapshotTree(root), before);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('dry run writes nothing; a replaced file is backed up; present settings are kept and re-stamped', async () => {
  const root = tempRoot();
  try {
    const dry = await installDom0({ root, dryRun: true });
    assert.ok(dry.files.length > 0 && dry.files.every((f) => f.status === 'new'));
    assert.deepEqual(readdirSync(root), []);

    await installDom0({ root });
    const policyPath = join(root, 'etc/qubes/policy.d/30-qmcp.policy');
    const good = readFileSync(policyPath, 'utf8');
    writeFileSync(policyPath, '# hand edit\n');
    const again = await installDom0({ root });
    assert.deepEqual(again.files.filter((f) => f.status !== 'unchanged').map((f) => f.path), ['etc/qubes/policy.d/30-qmcp.policy']);
    assert.equal(readFileSync(policyPath, 'utf8'), good);
    assert.equal(again.backups.length, 1);
    assert.equal(readFileSync(join(root, again.backups[0] as string), 'utf8'), '# hand edit\n');
    assert.ok(!(again.backups[0] as string).startsWith('etc/'), 'backups stay out of qrexec directories');

    // The operator's own settings stay as written, with the model hash stamped in,
    // and the policy is rendered from them (here: compat mode).
    const settings = join(root, 'etc/qmcp/settings.json');
    writeFileSync(settings, JSON.stringify({ principal: 'mcp-control', mode: 'compat', poolCapBytes: 1024 }));
    await installDom0({ root });
    const stamped = JSON.parse(readFileSync(settings, 'utf8')) as Record<string, unknown>;
    assert.deepEqual(stamped, { principal: 'mcp-control', mode: 'compat', poolCapBytes: 1024, model: modelHash() });
    assert.match(readFileSync(policyPath, 'utf8'), /mode: compat/);
    const third = await installDom0({ root });
    assert.deepEqual(third.files.filter((f) => f.status !== 'unchanged'), [], 'a second install changes nothing');
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('unusable settings stop the install before anything is written', async () => {
  const root = tempRoot();
  try {
    const bad = join(root, 'bad.json');
    writeFileSync(bad, JSON.stringify({ principal: 'not a qube!', mode: 'compat' }));
    await assert.rejects(installDom0({ root: join(root, 'dom0'), settingsFile: bad }), InstallError);
    assert.ok(!existsSync(join(root, 'dom0')));
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('qmcp dom0 install: --root required, --dry-run honoured', async () => {
  const root = tempRoot();
  const log = console.log;
  const lines: string[] = [];
  console.log = (...a: unknown[]) => {
    lines.push(a.join(' '));
  };
  try {
    await assert.rejects(dom0InstallCommand.run(['--dry-run']), /--root/);
    assert.equal(await dom0InstallCommand.run(['--root', root, '--dry-run']), 0);
    assert.deepEqual(readdirSync(root), []);
    assert.equal(await dom0InstallCommand.run([`--root=${root}`, '--qubesd-socket', '/q.sock']), 0);
    assert.ok(readFileSync(join(root, 'etc/qubes-rpc/qmcp.List'), 'utf8').includes("'/q.sock'"));
    assert.ok(lines.some((l) => l.includes('would write new: etc/qubes/policy.d/30-qmcp.policy')));
  } finally {
    console.log = log;
    rmSync(root, { recursive: true, force: true });
  }
});
