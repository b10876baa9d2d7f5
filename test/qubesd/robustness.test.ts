import assert from 'node:assert/strict';
import { connect } from 'node:net';
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

const OK_LIST = (): Promise<string> => h.call('admin.vm.List', 'vault');

test('framing errors close with no bytes and the server keeps serving', async () => {
  const cases = [
    'admin.vm.List+ dom0 name dom0', // no NUL
    'admin.vm.List+ dom0 name\0', // short header
    'admin.vm.List\0',
    '\0',
    '',
    'admin.vm.List+ dom0 keyword default\0', // keyword other than adminvm
    'admin.vm.List+ dom0 label dom0\0', // bad desttype
  ];
  for (const c of cases) assert.equal((await h.raw(c)).length, 0, JSON.stringify(c));
  assert.match(await OK_LIST(), /^0\0vault class=AppVM/);
});

test('unknown qube is reported before unknown method; bad names and uuids are Qubes errors', async () => {
  assert.equal(await h.call('admin.no.Such', 'ghost'), "2\0QubesVMNotFoundError\0\0No such domain: 'ghost'\0");
  assert.equal(await h.call('admin.no.Such', 'work', { src: 'ghost' }), "2\0QubesVMNotFoundError\0\0No such domain: 'ghost'\0");
  assert.equal(await h.call('admin.no.Such', 'work'), "2\0ProtocolError\0\0no such method: 'admin.no.Such'\0");
  assert.equal(await h.call('admin.vm.List', '0bad'), '2\0QubesValueError\0\0VM name cannot start with hyphen, underscore, dot or numbers\0');
  assert.equal(await h.call('admin.vm.List', 'uuid:1234'), "2\0QubesVMInvalidUUIDError\0\0VM UUID is not valid: '1234'\0");
  assert.equal(
    await h.call('admin.vm.List', 'uuid:11111111-2222-3333-4444-555555555555'),
    "2\0QubesVMNotFoundError\0\0No such domain: 'uuid:11111111-2222-3333-4444-555555555555'\0",
  );
  // non-ASCII in a name is a UnicodeDecodeError in qubesd: no bytes
  assert.equal((await h.raw(Buffer.concat([Buffer.from('admin.vm.List+ dom0 name w'), Buffer.from([0xc3, 0xa9, 0])]))).length, 0);
});

test('bad arguments and payloads', async () => {
  assert.equal(await h.call('admin.vm.List', 'dom0', { arg: 'x' }), '2\0ProtocolError\0\0unexpected argument\0');
  assert.equal(await h.call('admin.vm.List', 'dom0', { payload: 'x' }), '2\0ProtocolError\0\0unexpected payload\0');
  assert.equal(await h.call('admin.label.List', 'work'), '2\0ProtocolError\0\0expected destination to be AdminVM\0');
  assert.equal(await h.call('admin.vm.Create.AppVM', 'dom0', { arg: 'tpl', payload: 'name=x label=red color=blue' }), '2\0ProtocolError\0\0Options does not match: name, label, pool, pool:\0');
  assert.equal((await h.call('admin.vm.Create.AppVM', 'dom0', { arg: 'tpl', payload: 'garbage' })).length, 0);
  assert.equal(await h.call('admin.vm.Create.AppVM', 'dom0', { arg: 'ghost-tpl', payload: 'name=x label=red' }), "2\0QubesVMNotFoundError\0\0No such domain: 'ghost-tpl'\0");
});

test('an oversize request is aborted without a reply', async () => {
  const big = Buffer.concat([Buffer.from('admin.vm.feature.Set+big dom0 name work\0'), Buffer.alloc(70000, 0x61)]);
  assert.equal((await h.raw(big)).length, 0);
  // exactly at the limit is still accepted (and fails for its own reasons)
  const head = Buffer.from('admin.vm.notes.Set+ dom0 name work\0');
  const fits = Buffer.concat([head, Buffer.alloc(65536 - head.length, 0x61)]);
  assert.equal((await h.raw(fits)).toString('latin1'), '0\0');
  assert.match(await OK_LIST(), /^0\0/);
});

test('a slow client does not block others', async () => {
  // sends half a header and never finishes
  const slow = connect(h.qubesd.socketPath);
  await new Promise<void>((r) => slow.once('connect', () => r()));
  slow.write('admin.vm.List+ dom0 na');
  // and a client that never reads its event stream
  const idle = connect(h.qubesd.socketPath, () => idle.end('admin.Events+ dom0 name dom0\0'));
  idle.pause();
  const replies = await Promise.all(Array.from({ length: 40 }, () => OK_LIST()));
  for (const r of replies) assert.match(r, /^0\0vault class=AppVM/);
  slow.destroy();
  idle.destroy();
});

test('random garbage never crashes the server', async () => {
  let seed = 7;
  const rnd = (): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed;
  };
  const pieces = ['admin.vm.', 'List', 'Start', '+', ' ', 'dom0', 'work', 'name', 'keyword', '\0', 'uuid:', 'property.Set', 'x=y', '\xff'];
  for (let i = 0; i < 150; i++) {
    let s = '';
    const n = rnd() % 12;
    for (let j = 0; j < n; j++) s += pieces[rnd() % pieces.length];
    await h.raw(Buffer.from(s, 'latin1'));
  }
  assert.match(await OK_LIST(), /^0\0vault class=AppVM/);
});
