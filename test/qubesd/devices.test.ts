import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { TestHost } from './helpers.js';
import { removeDir, startTestHost } from './helpers.js';

let h: TestHost;
before(async () => {
  h = await startTestHost();
});
after(async () => {
  await h.close();
  await removeDir(h.dir);
});

const INFO = "sda:disk1 device_id='disk1' port_id='sda' devclass='block' backend_domain='sys-net' name='USB stick'";

test('Available, Attach, Attached, Detach with their events', async () => {
  // a halted backend exposes nothing
  assert.equal(await h.call('admin.vm.device.block.Available', 'sys-net'), '0\0');
  assert.equal(await h.call('admin.vm.Start', 'sys-net'), '0\0');
  assert.equal(await h.call('admin.vm.device.block.Available', 'sys-net'), `0\0${INFO} interfaces='b******'\n`);
  assert.equal(await h.call('admin.vm.device.block.Available', 'sys-net', { arg: 'sdb' }), '0\0');
  // a halted frontend cannot take a device
  assert.equal(
    await h.call('admin.vm.device.block.Attach', 'vault', { arg: 'sys-net+sda:disk1', payload: "mode='manual'" }),
    '2\0QubesVMNotRunningError\0\0VM not running, cannot attach device, do you mean `assign`?\0',
  );
  // the payload is read against the argument first, as DeviceAssignment.deserialize reads it
  assert.equal(
    await h.call('admin.vm.device.block.Attach', 'vault', { arg: 'sys-net+sda:disk1', payload: "mode='manual' backend_domain='vault'" }),
    '2\0ProtocolError\0\0Got device exposed by vaultwhen expected devices from sys-net.\0',
  );
  assert.equal(
    await h.call('admin.vm.device.block.Attach', 'vault', { arg: 'sys-net+sda:disk1', payload: "mode='manual' bad='1'" }),
    "2\0ProtocolError\0\0DeviceAssignment.__init__() got an unexpected keyword argument 'bad'\0",
  );
  assert.equal(await h.call('admin.vm.Start', 'vault'), '0\0');
  const seen: string[] = [];
  const off = h.qubesd.app.subscribe((ev) => seen.push(`${ev.subject}:${ev.event}:${ev.kwargs.map(([k, v]) => `${k}=${v}`).join(',')}`));
  assert.equal(await h.call('admin.vm.device.block.Attach', 'vault', { arg: 'sys-net+sda:disk1', payload: "mode='manual' _read-only='yes'" }), '0\0');
  off();
  assert.deepEqual(seen, [
    "vault:device-pre-attach:block:device=sys-net:sda:disk1,options={'read-only': 'yes'}",
    "vault:device-attach:block:device=sys-net:sda:disk1,options={'read-only': 'yes'}",
  ]);
  assert.equal(
    await h.call('admin.vm.device.block.Attached', 'vault'),
    "0\0sys-net+sda:disk1 device_id='disk1' port_id='sda' devclass='block' backend_domain='sys-net' mode='manual' frontend_domain='vault' _read-only='yes'\n",
  );
  assert.equal(await h.call('admin.vm.device.block.Available', 'sys-net'), `0\0${INFO} attachment='vault' interfaces='b******'\n`);
  assert.match(await h.call('admin.vm.device.block.Attach', 'vault', { arg: 'sys-net+sda:disk1', payload: "mode='manual'" }), /^2\0DeviceAlreadyAttached\0/);
  assert.equal(await h.call('admin.vm.device.block.Detach', 'vault', { arg: 'sys-net+sda' }), '0\0');
  assert.equal(await h.call('admin.vm.device.block.Attached', 'vault'), '0\0');
  assert.match(await h.call('admin.vm.device.block.Detach', 'vault', { arg: 'sys-net+sda' }), /^2\0DeviceNotAssigned\0/);
  assert.match(await h.call('admin.vm.device.block.Attach', 'vault', { arg: 'sys-net+sdz:x', payload: "mode='manual'" }), /^2\0DeviceNotFound\0/);
  // qubesd looks an unknown backend up unguarded: no reply
  assert.equal(await h.call('admin.vm.device.block.Attach', 'vault', { arg: 'ghost+sda:x' }), '');
});

test('devices-denied refuses a manual attach', async () => {
  assert.equal(await h.call('admin.vm.feature.Set', 'vault', { arg: 'devices-denied', payload: 'b******' }), '0\0');
  assert.equal(await h.call('admin.vm.device.block.Attach', 'vault', { arg: 'sys-net+sda:disk1', payload: "mode='manual'" }), '2\0PermissionDenied\0\0Device exposes a banned interface\0');
  assert.equal(await h.call('admin.vm.feature.Remove', 'vault', { arg: 'devices-denied' }), '0\0');
});

test('Assign, Assigned, Unassign', async () => {
  // an assignment must attach by itself: a manual one is qubesd's ValueError, no reply
  assert.equal(await h.call('admin.vm.device.block.Assign', 'work', { arg: 'sys-net+sda:disk1', payload: "mode='manual'" }), '');
  assert.equal(await h.call('admin.vm.device.block.Assign', 'work', { arg: 'sys-net+sda:disk1', payload: 'bad' }), "2\0ProtocolError\0\0DeviceAssignment.__init__() got an unexpected keyword argument 'bad'\0");
  assert.equal(await h.call('admin.vm.device.block.Assign', 'work', { arg: 'sys-net+sda:disk1', payload: "mode='required' frontend_domain='work'" }), '0\0');
  assert.equal(
    await h.call('admin.vm.device.block.Assigned', 'work'),
    "0\0sys-net+sda:disk1 device_id='disk1' port_id='sda' devclass='block' backend_domain='sys-net' mode='required' frontend_domain='work'\n",
  );
  assert.equal(await h.call('admin.vm.device.block.Unassign', 'work', { arg: 'sys-net+sda:disk1' }), '0\0');
  // a payload without a frontend: qubesd lists the assignment without one
  assert.equal(await h.call('admin.vm.device.block.Assign', 'work', { arg: 'sys-net+sda:disk1', payload: "mode='auto-attach'" }), '0\0');
  assert.equal(
    await h.call('admin.vm.device.block.Assigned', 'work'),
    "0\0sys-net+sda:disk1 device_id='disk1' port_id='sda' devclass='block' backend_domain='sys-net' mode='auto-attach'\n",
  );
  assert.equal(await h.call('admin.vm.device.block.Unassign', 'work', { arg: 'sys-net+sda:disk1' }), '0\0');
  assert.equal(await h.call('admin.vm.device.block.Assigned', 'work'), '0\0');
  assert.equal(await h.call('admin.vm.device.block.Unassign', 'work', { arg: 'sys-net+sda:disk1' }), "2\0DeviceNotAssigned\0\0'block device sys-net:sda:disk1 not assigned to work'\0");
});
