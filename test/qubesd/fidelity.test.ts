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
