import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { qubesdEvents } from '../../src/shared/adminapi/client.js';
import type { AdminEvent } from '../../src/shared/adminapi/wire.js';
import type { TestHost } from './helpers.js';
import { rawCall, removeDir, startTestHost } from './helpers.js';

let h: TestHost;
before(async () => {
  h = await startTestHost();
});
after(async () => {
  await h.close();
  await removeDir(h.dir);
});

/** Collects events for `dest` while `body` runs; the stream is open before body starts. */
async function recording(dest: string, body: () => Promise<void>): Promise<AdminEvent[]> {
  const got: AdminEvent[] = [];
  const ac = new AbortController();
  let ready!: () => void;
  const established = new Promise<void>((r) => (ready = r));
  const done = qubesdEvents(
    h.qubesd.socketPath,
    dest,
    (ev) => {
      if (ev.event === 'connection-established') ready();
      else got.push(ev);
    },
    ac.signal,
  );
  await established;
  await body();
  // a marker event fired after body: once it arrives, everything before it has too
  let marked!: () => void;
  const marker = new Promise<void>((r) => (marked = r));
  const off = h.qubesd.app.subscribe((ev) => {
    if (ev.event === 'test-marker') setImmediate(marked);
  });
  h.qubesd.app.fire(dest === 'dom0' ? '' : dest, 'test-marker');
  await marker;
  off();
  ac.abort();
  await done;
  return got.filter((e) => e.event !== 'test-marker');
}

const names = (evs: AdminEvent[]): string[] => evs.map((e) => `${e.subject}:${e.event}`);

test('start runs the netvm chain first and fires the start sequence', async () => {
  const evs = await recording('dom0', async () => {
    assert.equal(await h.call('admin.vm.Start', 'work'), '0\0');
  });
  const seq = (vm: string): string[] =>
    [
      'domain-pre-start',
      'domain-pre-spawn',
      'property-reset:xid',
      'property-reset:stubdom_xid',
      'property-reset:start_time',
      'domain-spawn',
      'domain-pre-unpaused',
      'domain-unpaused',
      'domain-start',
    ].map((e) => `${vm}:${e}`);
  const n = names(evs);
  for (const vm of ['work', 'sys-firewall', 'sys-net']) {
    assert.deepEqual(n.filter((x) => x.startsWith(`${vm}:`)), seq(vm));
  }
  // sys-net is up before sys-firewall, which is up before work
  assert.ok(n.indexOf('sys-net:domain-start') < n.indexOf('sys-firewall:domain-start'));
  assert.ok(n.indexOf('sys-firewall:domain-start') < n.indexOf('work:domain-spawn'));
  const pre = evs.find((e) => e.event === 'domain-pre-start' && e.subject === 'work');
  assert.deepEqual(pre?.kwargs.map(([k]) => k), ['start_guid', 'mem_required']);
  assert.equal(await h.call('admin.vm.CurrentState', 'work'), `0\0mem=${400 * 1024} mem_static_max=${4000 * 1024} cputime=0 power_state=Running`);
  // starting a running qube succeeds silently
  assert.equal(await h.call('admin.vm.Start', 'work'), '0\0');
});

test('pause, unpause, shutdown, kill and their errors', async () => {
  const evs = await recording('work', async () => {
    assert.equal(await h.call('admin.vm.Pause', 'work'), '0\0');
    assert.equal(await h.call('admin.vm.Pause', 'work'), "2\0QubesVMNotRunningError\0\0Domain not running (either powered off or paused): 'work'\0");
    assert.equal(await h.call('admin.vm.Unpause', 'work'), '0\0');
    assert.equal(await h.call('admin.vm.Unpause', 'work'), "2\0QubesVMNotPausedError\0\0Domain is not paused: 'work'\0");
    assert.equal(await h.call('admin.vm.Shutdown', 'work', { arg: 'wait' }), '0\0');
  });
  assert.deepEqual(names(evs), [
    'work:domain-pre-paused',
    'work:domain-paused',
    'work:domain-pre-unpaused',
    'work:domain-unpaused',
    'work:domain-pre-shutdown',
    'work:domain-stopped',
    'work:property-reset:xid',
    'work:property-reset:stubdom_xid',
    'work:property-reset:start_time',
    'work:domain-shutdown',
  ]);
  assert.deepEqual(evs[4]?.kwargs, [['force', 'False']]);
  assert.equal(await h.call('admin.vm.Shutdown', 'work'), "2\0QubesVMNotStartedError\0\0Domain is powered off: 'work'\0");
  assert.equal(await h.call('admin.vm.Kill', 'work'), "2\0QubesVMNotStartedError\0\0Domain is powered off: 'work'\0");
  assert.equal(await h.call('admin.vm.Shutdown', 'work', { arg: 'now' }), '2\0ProtocolError\0\0Argument must match: force, wait\0');
  // a netvm with running clients refuses a plain shutdown
  assert.match(await h.call('admin.vm.Shutdown', 'sys-net'), /^2\0QubesVMInUseError\0\0There are other VMs connected to this VM: sys-firewall\0$/);
  const killed = await recording('sys-firewall', async () => {
    assert.equal(await h.call('admin.vm.Kill', 'sys-firewall'), '0\0');
  });
  assert.deepEqual(names(killed)[0], 'sys-firewall:domain-stopped');
  assert.equal(await h.call('admin.vm.Shutdown', 'sys-net', { arg: 'force+wait' }), '0\0');
});

test('prohibit-start refuses the start', async () => {
  assert.equal(await h.call('admin.vm.feature.Set', 'vault', { arg: 'prohibit-start', payload: 'kept offline' }), '0\0');
  assert.equal(await h.call('admin.vm.Start', 'vault'), '2\0QubesException\0\0Qube start is prohibited. Rationale: kept offline\0');
  assert.equal(await h.call('admin.vm.CurrentState', 'vault'), '0\0mem=0 mem_static_max=0 cputime=0 power_state=Halted');
});

test('CreateDisposable names dispN, copies from its template, and auto_cleanup removes it on shutdown', async () => {
  const name = (await h.call('admin.vm.CreateDisposable', 'dom0', { src: 'work' })).slice(2);
  assert.match(name, /^disp[0-9]{1,4}$/);
  assert.ok(!/^disp0[0-9]/.test(name), 'dispid is not zero-padded');
  assert.equal(await h.call('admin.vm.tag.List', name), `0\0ai-managed\naudiovm-dom0\ncreated-by-work\ndisp-created-by-work\nguivm-dom0\n`);
  assert.equal(await h.call('admin.vm.property.Get', name, { arg: 'auto_cleanup' }), '0\0default=False type=bool True');
  assert.equal(await h.call('admin.vm.property.Get', name, { arg: 'template' }), '0\0default=False type=vm dvm');
  assert.equal(await h.call('admin.vm.property.Get', name, { arg: 'include_in_backups' }), '0\0default=True type=bool False');
  const dispid = Number(name.slice(4));
  assert.equal(await h.call('admin.vm.property.Get', name, { arg: 'ip' }), `0\0default=True type=str 10.138.${dispid >> 8}.${dispid & 255}`);
  assert.equal(await h.call('admin.vm.CurrentState', name), '0\0mem=0 mem_static_max=0 cputime=0 power_state=Halted');
  const uuidReply = await h.call('admin.vm.CreateDisposable', 'dvm', { payload: 'uuid' });
  assert.match(uuidReply, /^0\0uuid:[0-9a-f-]{36}$/);
  assert.equal(await h.call('admin.vm.CreateDisposable', 'dvm', { arg: 'x' }), "2\0PermissionDenied\0\0Argument not in \"'', 'preload'\"\0");
  assert.match(await h.call('admin.vm.CreateDisposable', 'work'), /^2\0QubesException\0\0Refusing to create disposable out of app qube/);
  const evs = await recording('dom0', async () => {
    assert.equal(await h.call('admin.vm.Start', name), '0\0');
    assert.equal(await h.call('admin.vm.Kill', name), '0\0');
  });
  const n = names(evs);
  assert.ok(n.indexOf(`${name}:domain-shutdown`) < n.indexOf(':domain-pre-delete'));
  assert.deepEqual(evs.find((e) => e.event === 'domain-delete')?.kwargs, [['vm', name]]);
  assert.equal(await h.call('admin.vm.List', name), `2\0QubesVMNotFoundError\0\0No such domain: '${name}'\0`);
  // a named DispVM is persistent
  assert.equal(await h.call('admin.vm.Create.DispVM', 'dom0', { arg: 'dvm', payload: 'name=keep label=red' }), '0\0');
  assert.equal(await h.call('admin.vm.Start', 'keep'), '0\0');
  assert.equal(await h.call('admin.vm.Kill', 'keep'), '0\0');
  assert.match(await h.call('admin.vm.List', 'keep'), /^0\0keep class=DispVM state=Halted/);
});

test('events stream bytes: connection-established first, app events with empty subject', async () => {
  const chunks: Buffer[] = [];
  const { connect } = await import('node:net');
  const sock = connect(h.qubesd.socketPath, () => sock.end('admin.Events+ dom0 name dom0\0'));
  let first!: () => void;
  const gotFirst = new Promise<void>((r) => (first = r));
  let seenLast!: () => void;
  const gotLast = new Promise<void>((r) => (seenLast = r));
  sock.on('data', (c: Buffer) => {
    chunks.push(c);
    first();
    if (Buffer.concat(chunks).includes('1\0ev1\0domain-create-on-disk\0\0')) seenLast();
  });
  await gotFirst;
  assert.equal(await h.call('admin.vm.tag.Set', 'work', { arg: 'x1' }), '0\0');
  assert.equal(await h.call('admin.vm.Create.AppVM', 'dom0', { arg: 'tpl', payload: 'name=ev1 label=red' }), '0\0');
  await gotLast;
  sock.destroy();
  const all = Buffer.concat(chunks).toString('latin1');
  assert.ok(all.startsWith('1\0\0connection-established\0\0'), JSON.stringify(all.slice(0, 40)));
  assert.ok(all.includes('1\0work\0domain-tag-add:x1\0tag\0x1\0\0'));
  assert.ok(all.includes('1\0\0domain-add\0vm\0ev1\0\0'));
  assert.ok(all.includes('1\0ev1\0domain-tag-add:created-by-dom0\0tag\0created-by-dom0\0\0'));
  assert.ok(all.includes('1\0ev1\0domain-create-on-disk\0\0'));
  // property-set carries name, newvalue and oldvalue
  const evs = await recording('work', async () => {
    assert.equal(await h.call('admin.vm.property.Set', 'work', { arg: 'netvm', payload: '' }), '0\0');
  });
  assert.deepEqual(evs.map((e) => [e.event, e.kwargs]), [
    ['property-pre-set:netvm', [['name', 'netvm'], ['newvalue', 'None'], ['oldvalue', 'sys-firewall']]],
    ['property-set:netvm', [['name', 'netvm'], ['newvalue', 'None'], ['oldvalue', 'sys-firewall']]],
  ]);
  assert.ok((await rawCall(h.qubesd.socketPath, 'admin.vm.property.Reset+netvm dom0 name work\0')).equals(Buffer.from('0\0')));
});

test('concurrent starts of one qube all return once it runs, with one start sequence', async () => {
  const starts: string[] = [];
  const off = h.qubesd.app.subscribe((ev) => {
    if (ev.event === 'domain-start') starts.push(ev.subject);
  });
  const replies = await Promise.all([1, 2, 3].map(() => h.call('admin.vm.Start', 'dvm')));
  off();
  assert.deepEqual(replies, ['0\0', '0\0', '0\0']);
  assert.equal(starts.filter((s) => s === 'dvm').length, 1);
  assert.match(await h.call('admin.vm.List', 'dvm'), /state=Running/);
  assert.equal(await h.call('admin.vm.Kill', 'dvm'), '0\0');
});
