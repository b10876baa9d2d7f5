/**
 * qubes.NotifyUpdates from the agent's side cannot touch the operator's template.
 * From a template-based qube, qubesd marks the nearest updateable template up
 * its chain (qubes/api/misc.py); an umbrella or sink qube may run on the
 * operator's template, so the policy refuses the call from them.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { openAudit } from '../../src/dom0/audit/index.js';
import { setMode } from '../../src/dom0/operator/index.js';
import { Qubesd } from '../../src/dom0/qubesd.js';
import type { Fleet } from '../../src/sim/fleet.js';
import { dom0Root, startSimHost } from '../../src/sim/host.js';
import type { SimHost } from '../../src/sim/host.js';
import { qrexecCollect } from '../../src/sim/qrexec/index.js';
import { collect, skipWithoutBwrap } from '../sandbox/helpers.js';
import { PRINCIPAL, REFUSED } from './helpers.js';

/** The operator's template, an operator qube on it, and agent qubes on it and on their own. */
const fleet: Fleet = {
  properties: { default_netvm: null, default_template: 'tpl' },
  qubes: [
    { name: 'tpl', klass: 'TemplateVM', label: 'black' },
    { name: PRINCIPAL, klass: 'AppVM', template: 'tpl', label: 'purple', properties: { netvm: null } },
    { name: 'work', klass: 'AppVM', template: 'tpl', label: 'blue', properties: { netvm: null } },
    { name: 'ai-tpl', klass: 'TemplateVM', label: 'gray', tags: ['ai-managed', 'ai-full'] },
    { name: 'ai-box', klass: 'AppVM', template: 'tpl', label: 'red', tags: ['ai-managed', 'ai-exec'], properties: { netvm: null } },
    { name: 'ai-read', klass: 'AppVM', template: 'tpl', label: 'red', tags: ['ai-managed'], properties: { netvm: null } },
    { name: 'ai-own', klass: 'AppVM', template: 'ai-tpl', label: 'red', tags: ['ai-managed', 'ai-full'], properties: { netvm: null } },
    {
      name: 'ai-dvm',
      klass: 'AppVM',
      template: 'tpl',
      label: 'red',
      tags: ['ai-managed', 'ai-full'],
      properties: { netvm: null, template_for_dispvms: true },
    },
    { name: 'ai-solo', klass: 'StandaloneVM', label: 'red', tags: ['ai-managed', 'ai-full'], properties: { netvm: null } },
    { name: 'drop', klass: 'AppVM', template: 'tpl', label: 'red', tags: ['ai-dump'], properties: { netvm: null } },
  ],
};

describe('qubes.NotifyUpdates from umbrella and sink qubes', () => {
  let dir: string;
  let host: SimHost;
  let admin: Qubesd;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'qmcp-notify-boundary-'));
    const settingsFile = join(dir, 'settings.json');
    const tags = { umbrella: 'ai-managed', sink: 'ai-dump', exec: 'ai-exec', net: 'ai-net', full: 'ai-full' };
    await writeFile(settingsFile, JSON.stringify({ principal: PRINCIPAL, mode: 'least-privilege', tags }));
    host = await startSimHost({ dir: join(dir, 'host'), fleet, install: true, settingsFile });
    admin = new Qubesd(host.qubesd.socketPath);
  });
  after(async () => {
    await host.close();
    await rm(dir, { recursive: true, force: true });
  });

  const features = (vm: string): Record<string, string> => ({ ...host.qubesd.app.get(vm)?.features });
  const notify = async (source: string): Promise<{ status: number; stdout: string; stderr: string }> => {
    const r = await qrexecCollect(host.router.socketFor(source), 'dom0', 'qubes.NotifyUpdates', '7\n');
    return { status: r.status, stdout: r.stdout.toString('latin1'), stderr: r.stderr.toString('latin1') };
  };

  test('root inside an umbrella qube on the operator\'s template cannot mark that template', { skip: skipWithoutBwrap }, async () => {
    await admin.call('admin.vm.Start', 'ai-box');
    await host.router.refresh();
    for (const mode of ['least-privilege', 'compat'] as const) {
      await setMode({ root: dom0Root(host.dir), audit: openAudit({ root: dom0Root(host.dir) }) }, mode);
      const child = host.sandboxes.spawn('ai-box', ['/bin/sh', '-c', 'id -u; printf "7\\n" | qrexec-client-vm dom0 qubes.NotifyUpdates; echo "status=$?"']);
      const out = await collect(child);
      assert.equal(out.stdout, '0\nstatus=126\n', `${mode}: ${out.stderr}`);
      assert.deepEqual(features('tpl'), {}, `${mode}: the operator's template was marked`);
    }
  });

  test('every umbrella and sink seat is refused; the operator\'s own qube is not', async () => {
    const disp = await admin.call('admin.vm.CreateDisposable', 'ai-dvm');
    await host.router.refresh();
    // a disposable of an umbrella template carries its tags, and runs on the operator's template too
    for (const source of ['ai-box', 'ai-read', 'ai-own', 'ai-dvm', disp, 'ai-solo', 'drop', PRINCIPAL]) {
      assert.deepEqual(await notify(source), REFUSED, source);
    }
    for (const vm of ['tpl', 'ai-tpl', 'ai-solo']) assert.deepEqual(features(vm), {}, vm);
    // the service runs on this host: outside the world, Qubes' default policy lets a qube report
    assert.deepEqual(await notify('work'), { status: 0, stdout: '', stderr: '' });
    assert.equal(features('tpl')['updates-available'], '1');
  });
});
