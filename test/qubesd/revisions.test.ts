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

const ok = (reply: string): string => {
  assert.ok(reply.startsWith('0\0'), JSON.stringify(reply));
  return reply.slice(2);
};
const errorClass = (reply: string): string => (reply.startsWith('2\0') ? (reply.split('\0')[1] ?? '') : `not an exception: ${JSON.stringify(reply)}`);
const snapshots = async (vm: string, volume = 'private'): Promise<string[]> => ok(await h.call('admin.vm.volume.ListSnapshots', vm, { arg: volume })).split('\n').filter(Boolean);
const keep = async (vm: string, volume = 'private'): Promise<string> => /(?:^|\n)revisions_to_keep=(\S+)/.exec(ok(await h.call('admin.vm.volume.Info', vm, { arg: volume })))?.[1] ?? '';
const cycle = async (vm: string): Promise<void> => {
  ok(await h.call('admin.vm.Start', vm));
  ok(await h.call('admin.vm.Kill', vm));
};

test('a revision is made only when a saved-on-stop volume is committed at a stop, and pruned past revisions_to_keep', async () => {
  assert.deepEqual(await snapshots('work'), []);
  assert.equal(await keep('work'), '1');
  // a snapshot of its template's volume reports the pool's figure, as qubesd does, though no stop commits it
  assert.equal(await keep('work', 'root'), '1');
  await cycle('work');
  assert.deepEqual(await snapshots('work'), ['1']);
  assert.deepEqual(await snapshots('work', 'root'), []);
  await cycle('work');
  assert.deepEqual(await snapshots('work'), ['2'], 'one kept: the older is pruned');
  ok(await h.call('admin.vm.volume.Set.revisions_to_keep', 'work', { arg: 'private', payload: '3' }));
  assert.equal(await keep('work'), '3');
  await cycle('work');
  await cycle('work');
  await cycle('work');
  assert.deepEqual(await snapshots('work'), ['3', '4', '5']);
  // a template's root is saved on stop and keeps revisions too
  await cycle('tpl');
  assert.deepEqual(await snapshots('tpl', 'root'), ['1']);
});

test('Revert: a cleanly stopped volume only, a listed revision only; the current content is kept as a new revision and the chosen one used up', async () => {
  ok(await h.call('admin.vm.volume.Set.revisions_to_keep', 'vault', { arg: 'private', payload: '2' }));
  await cycle('vault');
  await cycle('vault');
  assert.deepEqual(await snapshots('vault'), ['1', '2']);
  assert.equal(errorClass(await h.call('admin.vm.volume.Revert', 'vault', { arg: 'private', payload: '9' })), 'QubesVolumeRevisionNotFoundError');
  assert.equal(errorClass(await h.call('admin.vm.volume.Revert', 'vault', { arg: 'private', payload: '1;x' })), 'PermissionDenied');
  assert.equal(errorClass(await h.call('admin.vm.volume.Revert', 'vault', { arg: 'nosuch', payload: '1' })), 'PermissionDenied');
  ok(await h.call('admin.vm.Start', 'vault'));
  assert.equal(errorClass(await h.call('admin.vm.volume.Revert', 'vault', { arg: 'private', payload: '1' })), 'StoragePoolException');
  ok(await h.call('admin.vm.Kill', 'vault'));
  assert.deepEqual(await snapshots('vault'), ['2', '3']);
  // surrounding whitespace is stripped, as qubesd strips it
  ok(await h.call('admin.vm.volume.Revert', 'vault', { arg: 'private', payload: ' 2\n' }));
  assert.deepEqual(await snapshots('vault'), ['3', '4'], 'the current content kept as 4, and 2 used up');
});

test('Set.revisions_to_keep: a number from -1; turning snapshots on or off only while halted', async () => {
  assert.equal(errorClass(await h.call('admin.vm.volume.Set.revisions_to_keep', 'sys-net', { arg: 'private', payload: '-2' })), 'QubesValueError');
  assert.equal(errorClass(await h.call('admin.vm.volume.Set.revisions_to_keep', 'sys-net', { arg: 'private', payload: '01' })), 'ProtocolError');
  assert.equal(errorClass(await h.call('admin.vm.volume.Set.revisions_to_keep', 'sys-net', { arg: 'private', payload: 'x' })), 'ProtocolError');
  ok(await h.call('admin.vm.Start', 'sys-net'));
  assert.equal(errorClass(await h.call('admin.vm.volume.Set.revisions_to_keep', 'sys-net', { arg: 'private', payload: '-1' })), 'QubesVMNotHaltedError');
  ok(await h.call('admin.vm.volume.Set.revisions_to_keep', 'sys-net', { arg: 'private', payload: '4' }));
  ok(await h.call('admin.vm.Kill', 'sys-net'));
  ok(await h.call('admin.vm.volume.Set.revisions_to_keep', 'sys-net', { arg: 'private', payload: '-1' }));
  assert.equal(await keep('sys-net'), '-1');
  await cycle('sys-net');
  assert.deepEqual(await snapshots('sys-net'), [], 'snapshots disabled: none made');
});
