/**
 * Answers the simulated qubesd gives where Qubes' own client tools found it
 * differed from qubesd (qubes-core-admin 4.4.0, qubes/vm/*.py, qubes/api/admin.py).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Fleet } from '../../src/sim/fleet.js';
import type { TestHost } from './helpers.js';
import { removeDir, smallFleet, startTestHost } from './helpers.js';

const fleet: Fleet = {
  ...smallFleet,
  qubes: [
    ...smallFleet.qubes,
    { name: 'solo-dvm', klass: 'StandaloneVM', label: 'orange', properties: { template_for_dispvms: true } },
    { name: 'solo', klass: 'StandaloneVM', label: 'orange' },
  ],
};

let h: TestHost;
before(async () => {
  h = await startTestHost(fleet);
});
after(async () => {
  await h.close();
  await removeDir(h.dir);
});

test('power calls on dom0 answer as qubesd\'s AdminVM', async () => {
  assert.equal(await h.call('admin.vm.Start', 'dom0'), '2\0QubesVMNotHaltedError\0\0Cannot start Dom0 fake domain!\0');
  assert.equal(await h.call('admin.vm.Kill', 'dom0'), '2\0QubesVMError\0\0Cannot kill Dom0 fake domain!\0');
  assert.equal(await h.call('admin.vm.Suspend', 'dom0'), '2\0QubesVMError\0\0Cannot suspend Dom0 fake domain!\0');
  // AdminVM.shutdown() takes no force or wait, and AdminVM has no pause, unpause or
  // resume: qubesd's TypeError or AttributeError closes the connection with no reply
  for (const arg of ['', 'force', 'wait', 'force+wait']) assert.equal(await h.call('admin.vm.Shutdown', 'dom0', { arg }), '', `Shutdown+${arg}`);
  for (const method of ['admin.vm.Pause', 'admin.vm.Unpause', 'admin.vm.Resume']) assert.equal(await h.call(method, 'dom0'), '', method);
  // the argument is still checked first
  assert.equal(await h.call('admin.vm.Shutdown', 'dom0', { arg: 'now' }), '2\0ProtocolError\0\0Argument must match: force, wait\0');
  assert.equal(h.qubesd.app.get('dom0')?.power, 'Running');
});

test('GetDefault answers nothing for a property without a default, and the default for one with', async () => {
  const getDefault = (dest: string, arg: string): Promise<string> => h.call('admin.vm.property.GetDefault', dest, { arg });
  // no default in qubes/vm/*.py: identity, label, template, dispid
  for (const prop of ['name', 'qid', 'uuid', 'label', 'template']) assert.equal(await getDefault('work', prop), '0\0', `work ${prop}`);
  for (const prop of ['name', 'qid', 'uuid', 'label']) assert.equal(await getDefault('tpl', prop), '0\0', `tpl ${prop}`);
  const disp = (await h.call('admin.vm.CreateDisposable', 'dvm')).slice(2);
  assert.equal(await getDefault(disp, 'dispid'), '0\0');
  assert.equal(await getDefault(disp, 'template'), '0\0');
  // dom0's identity has defaults (AdminVM), its label does not
  assert.equal(await getDefault('dom0', 'name'), '0\0type=str dom0');
  assert.equal(await getDefault('dom0', 'qid'), '0\0type=int 0');
  assert.equal(await getDefault('dom0', 'uuid'), '0\0type=str 00000000-0000-0000-0000-000000000000');
  assert.equal(await getDefault('dom0', 'label'), '0\0');
  // so a label dom0 has was set, as Qubes' install sets it
  assert.equal(await h.call('admin.vm.property.Get', 'dom0', { arg: 'label' }), '0\0default=False type=label black');
  // properties with a default answer it, also when set explicitly
  assert.equal(await getDefault('work', 'netvm'), '0\0type=vm sys-firewall');
  assert.equal(await getDefault('vault', 'netvm'), '0\0type=vm sys-firewall');
  assert.equal(await getDefault('work', 'memory'), '0\0type=int 400');
  assert.equal(await getDefault('work', 'backup_timestamp'), '0\0type=int ');
  assert.equal(await getDefault(disp, 'auto_cleanup'), '0\0type=bool False');
  assert.equal(await getDefault('work', 'nope'), "2\0QubesNoSuchPropertyError\0\0Invalid property 'nope' of work\0");
  // global properties: default_template and default_kernel have none
  assert.equal(await h.call('admin.property.GetDefault', 'dom0', { arg: 'default_template' }), '0\0');
  assert.equal(await h.call('admin.property.GetDefault', 'dom0', { arg: 'default_kernel' }), '0\0');
  assert.equal(await h.call('admin.property.GetDefault', 'dom0', { arg: 'default_netvm' }), '0\0type=vm ');
  assert.equal(await h.call('admin.property.GetDefault', 'dom0', { arg: 'default_qrexec_timeout' }), '0\0type=int 60');
});

test('a StandaloneVM with template_for_dispvms is a disposable template, as DVMTemplateMixin makes it', async () => {
  const name = (await h.call('admin.vm.CreateDisposable', 'solo-dvm')).slice(2);
  assert.match(name, /^disp[0-9]+$/);
  assert.equal(await h.call('admin.vm.property.Get', name, { arg: 'template' }), '0\0default=False type=vm solo-dvm');
  assert.equal(await h.call('admin.vm.Create.DispVM', 'dom0', { arg: 'solo-dvm', payload: 'name=solo-disp label=red' }), '0\0');
  assert.equal(h.qubesd.app.get('solo-disp')?.klass, 'DispVM');
  assert.equal(await h.call('admin.vm.Start', 'solo-disp'), '0\0');
  assert.equal(await h.call('admin.vm.Kill', 'solo-disp'), '0\0');
  // a halted disposable may be moved to any disposable template, AppVM or StandaloneVM
  assert.equal(await h.call('admin.vm.property.Set', 'solo-disp', { arg: 'template', payload: 'dvm' }), '0\0');
  assert.equal(await h.call('admin.vm.property.Set', 'solo-disp', { arg: 'template', payload: 'solo-dvm' }), '0\0');
  assert.equal(
    await h.call('admin.vm.property.Set', 'solo-disp', { arg: 'template', payload: 'solo' }),
    '2\0QubesPropertyValueError\0\0template for disposable must have template_for_dispvms=True\0',
  );
  // without the property, any class is refused with qubesd's texts
  assert.equal(
    await h.call('admin.vm.CreateDisposable', 'solo'),
    '2\0QubesException\0\0Refusing to create disposable out of app qube which has template_for_dispvms=False\0',
  );
  assert.equal(
    await h.call('admin.vm.Create.DispVM', 'dom0', { arg: 'tpl', payload: 'name=bad-disp label=red' }),
    '2\0QubesValueError\0\0template for disposable (tpl) needs to be an AppVM with template_for_dispvms=True\0',
  );
  assert.equal(h.qubesd.app.get('bad-disp'), undefined);
});
