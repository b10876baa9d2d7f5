// install then uninstall leaves a dom0 tree as it was; preconditions refuse before anything is written.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openAudit } from '../../src/dom0/audit/index.js';
import { InstallError, MANIFEST_PATH, TIMER_WANTS_LINK, installDom0 } from '../../src/dom0/install/index.js';
import { checkPreconditions } from '../../src/dom0/install/preconditions.js';
import { UninstallError, uninstallDom0 } from '../../src/dom0/install/uninstall.js';
import { Qubesd } from '../../src/dom0/qubesd.js';
import { DEFAULT_SETTINGS } from '../../src/shared/model/index.js';
import type { SimHost } from '../../src/sim/host.js';
import { qmcp as run } from '../operator/qmcp.js';
import { startSmallHost } from './small-host.js';
import { walk } from './tree.js';

const tmp = mkdtempSync(join(tmpdir(), 'qmcp-uninstall-'));
const NO_QUBESD = join(tmp, 'no-qubesd.sock');
let host: SimHost;

before(async () => {
  host = await startSmallHost(join(tmp, 'host'), { 'ai-hybrid': ['ai-managed', 'ai-dump'] });
});

after(async () => {
  await host.close();
  rmSync(tmp, { recursive: true, force: true });
});

let n = 0;
function tempRoot(): string {
  return mkdtempSync(join(tmp, `root${n++}-`));
}

/** A dom0 tree with the operator's own files, some where install writes. */
function operatorTree(root: string): void {
  mkdirSync(join(root, 'etc', 'qubes', 'policy.d'), { recursive: true, mode: 0o755 });
  writeFileSync(join(root, 'etc', 'qubes', 'policy.d', '90-default.policy'), 'qubes.Filecopy * @anyvm @anyvm ask\n');
  mkdirSync(join(root, 'etc', 'qubes-rpc'), { mode: 0o750 });
  chmodSync(join(root, 'etc', 'qubes-rpc'), 0o750);
  writeFileSync(join(root, 'etc', 'qubes-rpc', 'my.Service'), '#!/bin/sh\necho mine\n', { mode: 0o700 });
  // the operator's own file where install writes a wrapper
  writeFileSync(join(root, 'etc', 'qubes-rpc', 'qmcp.List'), '#!/bin/sh\necho operator edit\n', { mode: 0o700 });
  chmodSync(join(root, 'etc', 'qubes-rpc', 'qmcp.List'), 0o700);
  mkdirSync(join(root, 'home', 'user'), { recursive: true });
  symlinkSync('../../etc/qubes-rpc/my.Service', join(root, 'home', 'user', 'link'));
}

test('install then uninstall leaves the tree byte-identical: paths, modes, contents, links', async () => {
  for (const seeded of [false, true]) {
    const root = tempRoot();
    if (seeded) operatorTree(root);
    const before = walk(root);
    const first = await installDom0({ root, qubesdSocket: NO_QUBESD });
    assert.ok(first.files.some((f) => f.path === TIMER_WANTS_LINK && f.status === 'new'));
    assert.equal(readlinkSync(join(root, TIMER_WANTS_LINK)), '/etc/systemd/system/qmcp-reaper.timer');
    if (seeded) assert.notEqual(readFileSync(join(root, 'etc/qubes-rpc/qmcp.List'), 'utf8'), '#!/bin/sh\necho operator edit\n');
    const installed = walk(root);
    const second = await installDom0({ root, qubesdSocket: NO_QUBESD });
    assert.deepEqual(second.files.filter((f) => f.status !== 'unchanged'), [], 'a second install changes nothing');
    assert.deepEqual(walk(root), installed);

    const r = await uninstallDom0({ root });
    assert.deepEqual(r.problems, []);
    assert.deepEqual(r.restored, seeded ? ['etc/qubes-rpc/qmcp.List'] : []);
    assert.ok(r.kept.some((k) => /tags and tombstones/.test(k)), 'says what it leaves alone');
    assert.deepEqual(walk(root), before, seeded ? 'operator tree restored' : 'empty root left empty');
  }
});

test('uninstall --dry-run changes nothing; without a manifest it refuses', async () => {
  const root = tempRoot();
  await assert.rejects(uninstallDom0({ root }), UninstallError);
  await installDom0({ root, qubesdSocket: NO_QUBESD });
  const installed = walk(root);
  const dry = await uninstallDom0({ root, dryRun: true });
  assert.ok(dry.removed.includes('etc/qubes/policy.d/30-qmcp.policy'));
  assert.deepEqual(walk(root), installed);
  assert.equal((await run(['dom0', 'uninstall', '--root', root, '--json'])).status, 0);
  assert.ok(!existsSync(join(root, MANIFEST_PATH)));
  assert.equal((await run(['dom0', 'uninstall', '--root', root])).status, 1, 'nothing left to uninstall');
});

test('a used audit log stays, and an edited installed file is kept as a copy', async () => {
  const root = tempRoot();
  await installDom0({ root, qubesdSocket: NO_QUBESD });
  await openAudit({ root }).operator({ principal: 'dom0', operation: 'mode', result: 'ok' });
  writeFileSync(join(root, 'etc/qmcp/settings.json'), '{"principal":"mcp-control","mode":"compat"}\n');
  const r = await uninstallDom0({ root });
  assert.ok(existsSync(join(root, 'var/log/qmcp/audit.log')));
  assert.ok(r.kept.some((k) => k.startsWith('var/log/qmcp')));
  assert.deepEqual(r.saved.map((s) => s.path), ['etc/qmcp/settings.json']);
  assert.equal(readFileSync(join(root, r.saved[0]?.copy as string), 'utf8'), '{"principal":"mcp-control","mode":"compat"}\n');
  assert.ok(!existsSync(join(root, 'etc/qmcp/settings.json')));
  assert.ok(!existsSync(join(root, 'etc/qubes/policy.d')));
});

test('preconditions refuse with a precise reason and write nothing', async () => {
  const root = join(tmp, 'refused');
  const socket = host.qubesd.socketPath;
  await assert.rejects(installDom0({ root, preconditions: true, nodeVersion: '18.19.0', qubesdSocket: NO_QUBESD }), /Node 18\.19\.0 is too old/);
  await assert.rejects(installDom0({ root, preconditions: true, qubesdSocket: socket }), (err: Error) => err instanceof InstallError && /ai-managed and ai-dump: ai-hybrid/.test(err.message));
  const settings = join(tmp, 'other-principal.json');
  writeFileSync(settings, JSON.stringify({ principal: 'elsewhere', mode: 'compat' }));
  await assert.rejects(installDom0({ root, preconditions: true, qubesdSocket: socket, settingsFile: settings }), /principal qube elsewhere does not exist/);
  assert.ok(!existsSync(root));
  // a root other than / with no qubesd: the qube checks are skipped, and said so
  const dry = await installDom0({ root, preconditions: true, dryRun: true, qubesdSocket: NO_QUBESD });
  assert.ok(dry.notes.some((x) => /skipped/.test(x)));
  assert.ok(!existsSync(root));
});

test('preconditions note a qube with an elevation tag but no umbrella', async () => {
  const admin = new Qubesd(host.qubesd.socketPath);
  await admin.call('admin.vm.tag.Set', 'tpl', 'ai-exec');
  try {
    const r = await checkPreconditions({ root: join(tmp, 'stray'), principals: [DEFAULT_SETTINGS], qubesdSocket: host.qubesd.socketPath });
    assert.ok(r.notes.some((x) => /elevation tag without ai-managed: tpl/.test(x)), JSON.stringify(r.notes));
  } finally {
    await admin.call('admin.vm.tag.Remove', 'tpl', 'ai-exec');
  }
});

test('qmcp dom0 install: a diff for each changed file, --dry-run writes nothing, a second run says nothing changed', async () => {
  const root = tempRoot();
  const args = ['dom0', 'install', '--root', root, '--qubesd-socket', NO_QUBESD];
  assert.equal((await run(args)).status, 0);
  const policy = join(root, 'etc/qubes/policy.d/30-qmcp.policy');
  const good = readFileSync(policy, 'utf8');
  writeFileSync(policy, good.replace('qmcp.List * mcp-control @adminvm allow\n', ''));
  const dry = await run([...args, '--dry-run']);
  assert.equal(dry.status, 0);
  assert.match(dry.stdout, /would write changed: etc\/qubes\/policy.d\/30-qmcp.policy/);
  assert.match(dry.stdout, /^\+qmcp\.List \* mcp-control @adminvm allow$/m);
  assert.match(dry.stdout, /^@@ -\d+,\d+ \+\d+,\d+ @@$/m);
  assert.notEqual(readFileSync(policy, 'utf8'), good, 'dry run wrote nothing');
  assert.equal((await run(args)).status, 0);
  assert.equal(readFileSync(policy, 'utf8'), good);
  const again = await run(args);
  assert.equal(again.status, 0);
  assert.match(again.stdout, /already installed; nothing changed/);
  const json = await run([...args, '--json']);
  assert.equal((JSON.parse(json.stdout) as { changed: number }).changed, 0);
  const help = await run(['dom0', 'install', '--help']);
  assert.equal(help.status, 0);
  assert.match(help.stdout, /Exit 0 done, 1 refused/);
  assert.equal((await run([...args, '--bogus'])).status, 2);
  assert.equal((await run(['dom0', 'uninstall', '--root', root, '--json'])).status, 0);
});

test('the audit log and qmcp state directories go to the user the services run as', { skip: process.getuid?.() !== 0 ? 'needs root to chown' : false }, async () => {
  const root = tempRoot();
  await installDom0({ root, qubesdSocket: NO_QUBESD, serviceOwner: { uid: 4242, gid: 4343 } });
  for (const p of ['var/log/qmcp', 'var/log/qmcp/audit.log', 'var/lib/qmcp', 'var/lib/qmcp/slots']) {
    const st = lstatSync(join(root, p));
    assert.deepEqual([st.uid, st.gid], [4242, 4343], p);
  }
  assert.equal(lstatSync(join(root, 'etc/qmcp/settings.json')).uid, 0, 'what the services only read stays root');
});
