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

function uuidOf(name: string): string {
  const vm = h.qubesd.app.get(name);
  assert.ok(vm);
  return vm.uuid;
}

test('admin.vm.List from dom0: dom0 first, then by name, in qubesd format', async () => {
  const names = ['dom0', 'dvm', 'sys-firewall', 'sys-net', 'tpl', 'vault', 'work'];
  const klass: Record<string, string> = { dom0: 'AdminVM', tpl: 'TemplateVM' };
  const expected = names
    .map((n) => `${n} class=${klass[n] ?? 'AppVM'} state=${n === 'dom0' ? 'Running' : 'Halted'} uuid=${uuidOf(n)}\n`)
    .join('');
  assert.equal(await h.call('admin.vm.List', 'dom0'), `0\0${expected}`);
  assert.equal(await h.call('admin.vm.List', 'work'), `0\0work class=AppVM state=Halted uuid=${uuidOf('work')}\n`);
  assert.equal(uuidOf('dom0'), '00000000-0000-0000-0000-000000000000');
  // keyword adminvm is dom0; uuid: names work too
  assert.equal((await h.raw('admin.vm.List+ dom0 keyword adminvm\0')).toString('latin1'), `0\0${expected}`);
  assert.equal((await h.raw(`admin.vm.List+ dom0 name uuid:${uuidOf('work')}\0`)).toString('latin1'), `0\0work class=AppVM state=Halted uuid=${uuidOf('work')}\n`);
});

test('property Get shows default flag, type and value; computed defaults follow Qubes', async () => {
  assert.equal(await h.call('admin.vm.property.Get', 'work', { arg: 'netvm' }), '0\0default=True type=vm sys-firewall');
  assert.equal(await h.call('admin.vm.property.Get', 'work', { arg: 'label' }), '0\0default=False type=label blue');
  assert.equal(await h.call('admin.vm.property.Get', 'tpl', { arg: 'netvm' }), '0\0default=True type=vm ');
  assert.equal(await h.call('admin.vm.property.Get', 'vault', { arg: 'netvm' }), '0\0default=False type=vm ');
  assert.equal(await h.call('admin.vm.property.Get', 'vault', { arg: 'ip' }), '0\0default=True type=str ');
  const qid = h.qubesd.app.get('work')?.qid ?? -1;
  assert.equal(await h.call('admin.vm.property.Get', 'work', { arg: 'ip' }), `0\0default=True type=str 10.137.0.${qid}`);
  assert.equal(await h.call('admin.vm.property.Get', 'work', { arg: 'memory' }), '0\0default=True type=int 400');
  assert.equal(await h.call('admin.vm.property.Get', 'work', { arg: 'updateable' }), '0\0default=True type=bool False');
  assert.equal(await h.call('admin.vm.property.Get', 'work', { arg: 'default_dispvm' }), '0\0default=True type=vm dvm');
  assert.equal(await h.call('admin.vm.property.Get', 'work', { arg: 'backup_timestamp' }), '0\0default=True type=int ');
  // identity is explicit on qubes, default on dom0
  assert.equal(await h.call('admin.vm.property.Get', 'work', { arg: 'name' }), '0\0default=False type=str work');
  assert.equal(await h.call('admin.vm.property.Get', 'dom0', { arg: 'qid' }), '0\0default=True type=int 0');
  assert.equal(await h.call('admin.vm.property.Get', 'work', { arg: 'icon' }), '0\0default=True type=str appvm-blue');
  assert.equal(await h.call('admin.vm.property.Get', 'sys-firewall', { arg: 'visible_gateway' }), `0\0default=True type=str 10.137.0.${h.qubesd.app.get('sys-net')?.qid}`);
  assert.equal(await h.call('admin.vm.property.Get', 'work', { arg: 'nope' }), "2\0QubesNoSuchPropertyError\0\0Invalid property 'nope' of work\0");
  assert.equal(await h.call('admin.property.Get', 'dom0', { arg: 'default_netvm' }), '0\0default=False type=vm sys-firewall');
  assert.equal(await h.call('admin.property.Get', 'dom0', { arg: 'clockvm' }), '0\0default=True type=vm ');
  assert.equal(await h.call('admin.property.Get', 'work', { arg: 'clockvm' }), '2\0ProtocolError\0\0expected destination to be AdminVM\0');
});

test('property GetAll lists every property by load stage, then name, one per line', async () => {
  const r = await h.call('admin.vm.property.GetAll', 'work');
  assert.ok(r.startsWith('0\0autostart default=True type=bool False\n'), r.slice(0, 80));
  const lines = r.slice(2).split('\n').filter(Boolean);
  const names = lines.map((l) => l.split(' ')[0] ?? '');
  // qubesd loads references to qubes, bootmode and kernelopts last, and lists them last
  const late = ['audiovm', 'bootmode', 'default_dispvm', 'guivm', 'kernelopts', 'management_dispvm', 'netvm', 'template'];
  const early = names.filter((n) => !late.includes(n));
  assert.deepEqual(names, [...early].sort().concat(late));
  assert.ok(lines.includes('template default=False type=vm tpl'));
  assert.ok(lines.includes('klass default=True type=str AppVM'));
  const list = await h.call('admin.vm.property.List', 'work');
  assert.deepEqual(list.slice(2).split('\n').filter(Boolean), names);
});

test('property Set and Reset, with errors', async () => {
  assert.equal(await h.call('admin.vm.property.Set', 'work', { arg: 'memory', payload: '800' }), '0\0');
  assert.equal(await h.call('admin.vm.property.Get', 'work', { arg: 'memory' }), '0\0default=False type=int 800');
  assert.equal(await h.call('admin.vm.property.Reset', 'work', { arg: 'memory' }), '0\0');
  assert.equal(await h.call('admin.vm.property.Get', 'work', { arg: 'memory' }), '0\0default=True type=int 400');
  // an empty payload sets a VM property to None
  assert.equal(await h.call('admin.vm.property.Set', 'work', { arg: 'netvm', payload: '' }), '0\0');
  assert.equal(await h.call('admin.vm.property.Get', 'work', { arg: 'netvm' }), '0\0default=False type=vm ');
  assert.equal(await h.call('admin.vm.property.Reset', 'work', { arg: 'netvm' }), '0\0');
  assert.match(await h.call('admin.vm.property.Set', 'work', { arg: 'netvm', payload: 'ghost' }), /^2\0QubesPropertyValueError\0\0/);
  assert.match(await h.call('admin.vm.property.Set', 'work', { arg: 'netvm', payload: 'vault' }), /^2\0QubesValueError\0\0/);
  assert.equal(await h.call('admin.vm.property.Set', 'work', { arg: 'label', payload: 'pink' }), '2\0QubesLabelNotFoundError\0\0Label does not exist: pink\0');
  assert.equal(await h.call('admin.vm.property.Set', 'work', { arg: 'autostart', payload: 'maybe' }), "2\0QubesValueError\0\0Invalid literal for boolean property: 'maybe'\0");
  assert.equal(await h.call('admin.vm.property.Set', 'work', { arg: 'debug', payload: 'True' }), '0\0');
  assert.equal(await h.call('admin.vm.property.Get', 'work', { arg: 'debug' }), '0\0default=False type=bool True');
  assert.equal(await h.call('admin.vm.property.Reset', 'work', { arg: 'debug', payload: 'x' }), '2\0ProtocolError\0\0unexpected payload\0');
  assert.equal(await h.call('admin.vm.property.Get', 'work'), '2\0ProtocolError\0\0expected an argument\0');
});

test("qubesd's GUI and audio extensions tag each qube with the qube serving it", async () => {
  assert.equal(await h.call('admin.vm.tag.Get', 'vault', { arg: 'guivm-dom0' }), '0\x001');
  assert.equal(await h.call('admin.vm.tag.List', 'dom0'), '0\0');
  assert.equal(await h.call('admin.vm.property.Set', 'vault', { arg: 'guivm', payload: 'work' }), '0\0');
  assert.equal(await h.call('admin.vm.tag.List', 'vault'), '0\0audiovm-dom0\nguivm-work\n');
  assert.equal(await h.call('admin.vm.property.Set', 'vault', { arg: 'audiovm', payload: '' }), '0\0');
  assert.equal(await h.call('admin.vm.tag.List', 'vault'), '0\0guivm-work\n');
  assert.equal(await h.call('admin.vm.property.Reset', 'vault', { arg: 'guivm' }), '0\0');
  assert.equal(await h.call('admin.vm.property.Reset', 'vault', { arg: 'audiovm' }), '0\0');
  assert.equal(await h.call('admin.vm.tag.List', 'vault'), '0\0audiovm-dom0\nguivm-dom0\n');
});

test('tags: list, get, set, remove, and created-by guard', async () => {
  assert.equal(await h.call('admin.vm.tag.List', 'dvm'), '0\0ai-managed\naudiovm-dom0\nguivm-dom0\n');
  assert.equal(await h.call('admin.vm.tag.Get', 'dvm', { arg: 'ai-managed' }), '0\x001');
  assert.equal(await h.call('admin.vm.tag.Get', 'dvm', { arg: 'other' }), '0\x000');
  assert.equal(await h.call('admin.vm.tag.Set', 'work', { arg: 'ai-exec' }), '0\0');
  assert.equal(await h.call('admin.vm.tag.Set', 'work', { arg: 'ai-exec' }), '0\0');
  assert.equal(await h.call('admin.vm.tag.List', 'work'), '0\0ai-exec\naudiovm-dom0\nguivm-dom0\n');
  assert.equal(await h.call('admin.vm.tag.Remove', 'work', { arg: 'ai-exec' }), '0\0');
  assert.equal(await h.call('admin.vm.tag.Remove', 'work', { arg: 'ai-exec' }), '2\0QubesTagNotFoundError\0\0Tag not set for domain work: ai-exec\0');
  assert.equal(await h.call('admin.vm.tag.Set', 'work', { arg: 'bad!tag' }), '2\0QubesInvalidTagError\0\0disallowed characters\0');
  assert.equal(await h.call('admin.vm.tag.Set', 'work', { arg: 'created-by-x', src: 'vault' }), '2\0PermissionDenied\0\0\0');
  assert.equal(await h.call('admin.vm.tag.Set', 'work', { arg: 'created-by-x' }), '0\0');
});

test('features: set, get, list, CheckWithTemplate, remove, guarded names', async () => {
  assert.equal(await h.call('admin.vm.feature.Set', 'tpl', { arg: 'os', payload: 'Linux' }), '0\0');
  assert.equal(await h.call('admin.vm.feature.Get', 'work', { arg: 'os' }), '2\0QubesFeatureNotFoundError\0\0Feature not set for domain work: os\0');
  assert.equal(await h.call('admin.vm.feature.CheckWithTemplate', 'work', { arg: 'os' }), '0\0Linux');
  assert.equal(await h.call('admin.vm.feature.Set', 'work', { arg: 'a', payload: '' }), '0\0');
  assert.equal(await h.call('admin.vm.feature.Set', 'work', { arg: 'b', payload: '1' }), '0\0');
  assert.equal(await h.call('admin.vm.feature.List', 'work'), '0\0a\nb\n');
  assert.equal(await h.call('admin.vm.feature.Get', 'work', { arg: 'a' }), '0\0');
  assert.equal(await h.call('admin.vm.feature.Remove', 'work', { arg: 'a' }), '0\0');
  assert.equal(await h.call('admin.vm.feature.Remove', 'work', { arg: 'a' }), '2\0QubesFeatureNotFoundError\0\0Feature not set for domain work: a\0');
  assert.equal(await h.call('admin.vm.feature.Set', 'work', { arg: 'preload-dispvm', payload: 'x' }), '2\0PermissionDenied\0\0\0');
  assert.equal(await h.call('admin.vm.feature.Set', 'work', { arg: 'x', payload: 'tab\there' }), '2\0ProtocolError\0\0x value contains illegal characters\0');
});

test('firewall: default accept, set normalizes, bad rule closes with no bytes', async () => {
  assert.equal(await h.call('admin.vm.firewall.Get', 'work'), '0\0action=accept\n');
  const rules = 'action=accept proto=tcp dsthost=1.2.3.4 dstports=443 comment=web\naction=accept specialtarget=dns\naction=drop\n';
  assert.equal(await h.call('admin.vm.firewall.Set', 'work', { payload: rules }), '0\0');
  assert.equal(
    await h.call('admin.vm.firewall.Get', 'work'),
    '0\0action=accept dst4=1.2.3.4/32 proto=tcp dstports=443-443 comment=web\naction=accept specialtarget=dns\naction=drop\n',
  );
  assert.equal(await h.call('admin.vm.firewall.Set', 'work', { payload: 'action=maybe\n' }), '');
  assert.equal(await h.call('admin.vm.firewall.Set', 'work', { payload: 'action=accept dstports=80\n' }), '');
  assert.equal(await h.call('admin.vm.firewall.Set', 'work', { payload: '' }), '2\0ProtocolError\0\0expected payload\0');
  assert.equal(await h.call('admin.vm.firewall.Get', 'dom0'), '2\0ProtocolError\0\0expected destination to not be AdminVM\0');
  assert.equal(await h.call('admin.vm.firewall.Set', 'work', { payload: 'action=accept\n' }), '0\0');
});

test('create, volumes, clone and remove', async () => {
  assert.equal(await h.call('admin.vm.Create.AppVM', 'dom0', { arg: 'tpl', payload: 'name=new1 label=red' }), '0\0');
  assert.equal(await h.call('admin.vm.tag.List', 'new1'), '0\0audiovm-dom0\ncreated-by-dom0\nguivm-dom0\n');
  assert.equal(await h.call('admin.vm.Create.AppVM', 'dom0', { arg: 'tpl', payload: 'name=new1 label=red' }), '2\0QubesVMAlreadyExistsError\0\0Qube already exists: new1\0');
  // an unknown label is left out of the request, which then lacks one (qubesd's _vm_create)
  assert.equal(await h.call('admin.vm.Create.AppVM', 'dom0', { arg: 'tpl', payload: 'name=new2 label=pink' }), '2\0ProtocolError\0\0Creation requested without key: label\0');
  assert.equal(await h.call('admin.vm.Create.AppVM', 'dom0', { arg: 'tpl', payload: 'name=new2 label=' }), '2\0QubesInvalidLabelError\0\0Label name must be set\0');
  assert.equal(await h.call('admin.vm.Create.AppVM', 'dom0', { arg: 'tpl', payload: 'name=new2 label=3' }), '2\0QubesInvalidLabelError\0\0Label must not be a digit\0');
  assert.equal(await h.call('admin.vm.Create.AppVM', 'dom0', { arg: 'tpl', payload: 'name=new2' }), '2\0ProtocolError\0\0Creation requested without key: label\0');
  assert.equal(await h.call('admin.vm.Create.StandaloneVM', 'dom0', { arg: 'tpl', payload: 'name=new2 label=red' }), '2\0ProtocolError\0\0StandaloneVM cannot be based on template\0');
  assert.equal(await h.call('admin.vm.Create.StandaloneVM', 'dom0', { payload: 'name=new2 label=red' }), '0\0');
  assert.equal(await h.call('admin.vm.volume.List', 'new1'), '0\0root\nprivate\nvolatile\nkernel\n');
  const info = await h.call('admin.vm.volume.Info', 'new1', { arg: 'private' });
  assert.match(info, /^0\0pool=varlibqubes\nvid=appvms\/new1\/private\nsize=2147483648\nusage=0\nrw=True\nsource=\npath=\/var\/lib\/qubes\/appvms\/new1\/private.img\nsave_on_stop=True\nsnap_on_start=False\nrevisions_to_keep=1\nephemeral=False\nis_outdated=False\n$/);
  assert.match(await h.call('admin.vm.volume.Info', 'new1', { arg: 'root' }), /size=10737418240\n[^]*source=vm-templates\/tpl\/root\n[^]*snap_on_start=True\n/);
  const token = (await h.call('admin.vm.volume.CloneFrom', 'work', { arg: 'private' })).slice(2);
  assert.equal(token.length, 32);
  assert.equal(await h.call('admin.vm.volume.CloneTo', 'new1', { arg: 'private', payload: token }), '0\0');
  assert.match(await h.call('admin.vm.volume.CloneTo', 'new1', { arg: 'private', payload: token }), /^2\0QubesVolumeCopyTokenNotFoundError\0/);
  assert.equal(await h.call('admin.vm.volume.Info', 'new1', { arg: 'nope' }), "2\0PermissionDenied\0\0Argument not in 'new1 volumes'\0");
  assert.equal(await h.call('admin.pool.List', 'dom0'), '0\0varlibqubes\nlinux-kernel\n');
  assert.match(await h.call('admin.pool.Info', 'dom0', { arg: 'varlibqubes' }), /^0\0dir_path=\/var\/lib\/qubes\ndriver=file-reflink\nephemeral_volatile=False\nname=varlibqubes\nrevisions_to_keep=1\nsize=\d+\nusage=\d+\n$/);
  assert.equal(await h.call('admin.vm.Remove', 'new1'), '0\0');
  assert.equal(await h.call('admin.vm.Remove', 'new2'), '0\0');
  assert.equal(await h.call('admin.vm.List', 'new1'), "2\0QubesVMNotFoundError\0\0No such domain: 'new1'\0");
  assert.match(await h.call('admin.vm.Remove', 'tpl'), /^2\0QubesVMInUseError\0\0Domain is in use: 'tpl'/);
  assert.equal(await h.call('admin.vm.Remove', 'dom0'), "2\0QubesVMInUseError\0\0'dom0' cannot be removed\0");
});

test('tag-created-vm-with adds the creator\'s tags to what it creates', async () => {
  assert.equal(await h.call('admin.vm.feature.Set', 'vault', { arg: 'tag-created-vm-with', payload: 'ai-managed ai-exec' }), '0\0');
  // the caller is a qube: the router would have checked policy before forwarding
  assert.equal(await h.call('admin.vm.Create.AppVM', 'dom0', { arg: 'tpl', payload: 'name=child label=red', src: 'vault' }), '0\0');
  assert.equal(await h.call('admin.vm.tag.List', 'child'), '0\0ai-exec\nai-managed\naudiovm-dom0\ncreated-by-vault\nguivm-dom0\n');
  assert.equal(await h.call('admin.vm.Remove', 'child'), '0\0');
});

test('labels, vm classes, device classes, notes, CurrentState', async () => {
  assert.equal(await h.call('admin.label.List', 'dom0'), '0\0red\norange\nyellow\ngreen\ngray\nblue\npurple\nblack\n');
  assert.equal(await h.call('admin.label.Index', 'dom0', { arg: 'black' }), '0\x008');
  assert.equal(await h.call('admin.deviceclass.List', 'dom0'), '0\0block\nmic\npci\nusb\n');
  assert.equal(await h.call('admin.vm.device.usb.Available', 'sys-net'), '0\0');
  assert.equal(await h.call('admin.vm.notes.Get', 'work'), '0\0');
  assert.equal(await h.call('admin.vm.CurrentState', 'work'), '0\0mem=0 mem_static_max=0 cputime=0 power_state=Halted');
});
