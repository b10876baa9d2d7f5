/**
 * qubes.NotifyUpdates as qubesd's misc API answers it (qubes-core-admin
 * qubes/api/misc.py), and as dom0 wires it: a qrexec service script that hands
 * the call to qubesd.misc.sock with qubesd-query (qubes-rpc/qubes.NotifyUpdates).
 */
import assert from 'node:assert/strict';
import { accessSync, constants } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Fleet } from '../../src/sim/fleet.js';
import { dom0Root, startSimHost } from '../../src/sim/host.js';
import { qrexecCollect } from '../../src/sim/qrexec/index.js';
import type { TestHost } from './helpers.js';
import { rawCall, removeDir, smallFleet, startTestHost } from './helpers.js';

const fleet: Fleet = {
  ...smallFleet,
  qubes: [...smallFleet.qubes, { name: 'solo', klass: 'StandaloneVM', label: 'orange' }, { name: 'tpl2', klass: 'TemplateVM', label: 'black' }, { name: 'other', klass: 'AppVM', template: 'tpl2', label: 'red' }],
};

const DATE = /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/;

let h: TestHost;
before(async () => {
  h = await startTestHost(fleet);
});
after(async () => {
  await h.close();
  await removeDir(h.dir);
});

function notify(src: string, payload: string, extra: { arg?: string; dest?: string } = {}): Promise<string> {
  const head = `qubes.NotifyUpdates+${extra.arg ?? ''} ${src} name ${extra.dest ?? 'dom0'}\0`;
  return rawCall(h.qubesd.miscSocketPath, Buffer.from(head + payload, 'latin1')).then((b) => b.toString('latin1'));
}

const features = (vm: string): Record<string, string> => ({ ...h.qubesd.app.get(vm)?.features });

test('from a template-based qube: marks the nearest updateable template, only when it reports updates', async () => {
  const before = features('work');
  assert.equal(await notify('work', '0\n'), '0\0');
  assert.deepEqual(features('tpl'), {}, 'no-updates from a template-based qube is ignored');
  assert.equal(await notify('work', ' 3\n'), '0\0');
  const f = features('tpl');
  assert.equal(f['updates-available'], '1');
  assert.match(f['last-updates-check'] ?? '', DATE);
  assert.equal(f['last-update'], undefined);
  assert.deepEqual(features('work'), before, 'the caller itself is not marked');
  // a disposable's chain: DispVM -> its disposable template (AppVM) -> TemplateVM
  const disp = (await h.call('admin.vm.CreateDisposable', 'dvm')).slice(2);
  h.qubesd.app.removeFeature(h.qubesd.app.mustGet('tpl'), 'updates-available');
  assert.equal(await notify(disp, '1'), '0\0');
  assert.equal(features('tpl')['updates-available'], '1');
  assert.deepEqual(features('tpl2'), {}, 'another template is untouched');
});

test('from an updateable qube: marks itself, and records the update when updates are gone', async () => {
  assert.equal(await notify('solo', '2'), '0\0');
  assert.equal(features('solo')['updates-available'], '1');
  assert.equal(await notify('tpl2', '4'), '0\0');
  assert.equal(features('tpl2')['updates-available'], '1');
  assert.equal(features('tpl2')['last-update'], undefined);
  assert.equal(await notify('tpl2', '0'), '0\0');
  assert.equal(features('tpl2')['updates-available'], '');
  assert.match(features('tpl2')['last-update'] ?? '', DATE);
});

test('a running template, or an outdated snapshot of it, is left to report for itself', async () => {
  assert.equal(await h.call('admin.vm.Start', 'tpl2'), '0\0');
  h.qubesd.app.removeFeature(h.qubesd.app.mustGet('tpl2'), 'updates-available');
  assert.equal(await notify('other', '9'), '0\0');
  assert.equal(features('tpl2')['updates-available'], undefined, 'the template runs');
  assert.equal(await h.call('admin.vm.Shutdown', 'tpl2'), '0\0');
  // other started before its template last stopped: its root is outdated
  assert.equal(await h.call('admin.vm.Start', 'other'), '0\0');
  assert.equal(await h.call('admin.vm.Start', 'tpl2'), '0\0');
  assert.equal(await h.call('admin.vm.Shutdown', 'tpl2'), '0\0');
  assert.equal(await notify('other', '9'), '0\0');
  assert.equal(features('tpl2')['updates-available'], undefined, 'outdated');
  // restarted on the new template, it is heard again
  assert.equal(await h.call('admin.vm.Kill', 'other'), '0\0');
  assert.equal(await h.call('admin.vm.Start', 'other'), '0\0');
  assert.equal(await notify('other', '9'), '0\0');
  assert.equal(features('tpl2')['updates-available'], '1');
  assert.equal(await h.call('admin.vm.Kill', 'other'), '0\0');
});

test('payload and call checks as qubesd makes them', async () => {
  const snapshot = JSON.stringify(h.qubesd.app.snapshot().vms.map((v) => v.features));
  for (const bad of ['x', '-1', '+1', '1 2', ' \n', '1.5', '\u0663']) {
    assert.equal(await notify('work', bad), '2\0ProtocolError\0\0Update count is not a digit\0', JSON.stringify(bad));
  }
  assert.equal(await notify('work', ''), '2\0ProtocolError\0\0expected payload\0');
  assert.equal(await notify('work', '1', { arg: 'x' }), '2\0ProtocolError\0\0unexpected argument\0');
  assert.equal(await notify('work', '1', { dest: 'work' }), '2\0ProtocolError\0\0expected destination to be AdminVM\0');
  assert.equal(JSON.stringify(h.qubesd.app.snapshot().vms.map((v) => v.features)), snapshot, 'nothing changed');
  // the Admin API socket does not serve it
  const admin = (await rawCall(h.qubesd.socketPath, 'qubes.NotifyUpdates+ work name dom0\x001')).toString('latin1');
  assert.equal(admin, "2\0ProtocolError\0\0no such method: 'qubes.NotifyUpdates'\0");
});

test('dom0 wires it as Qubes does: a service script, its output discarded, qubesd\'s answer in the exit status', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'qmcp-notify-'));
  const host = await startSimHost({ dir, fleet });
  try {
    const script = join(dom0Root(dir), 'etc', 'qubes-rpc', 'qubes.NotifyUpdates');
    accessSync(script, constants.X_OK);
    const call = (src: string, payload: string) => qrexecCollect(host.router.socketFor(src), 'dom0', 'qubes.NotifyUpdates', payload);
    const ok = await call('work', '5\n');
    assert.deepEqual([ok.status, ok.stdout.toString(), ok.stderr.toString()], [0, '', '']);
    assert.equal(host.qubesd.app.get('tpl')?.features['updates-available'], '1');
    const bad = await call('work', 'many');
    assert.deepEqual([bad.status, bad.stdout.toString(), bad.stderr.toString()], [2, '', '']);
    // qubesd-query refuses a payload over 64 KiB without asking qubesd
    const big = await call('other', '1'.repeat(65537));
    assert.equal(big.status, 2);
    assert.equal(host.qubesd.app.get('tpl2')?.features['updates-available'], undefined);
  } finally {
    await host.close();
    await removeDir(dir);
  }
});
