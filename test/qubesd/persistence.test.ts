import assert from 'node:assert/strict';
import { readFile, writeFile, mkdir, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { startQubesd, StateFileError } from '../../src/sim/qubesd/index.js';
import { rawCall, removeDir, startTestHost } from './helpers.js';

test('state survives a restart; the fleet seeds a new directory only', async () => {
  const h = await startTestHost();
  try {
    assert.equal(await h.call('admin.vm.tag.Set', 'work', { arg: 'kept' }), '0\0');
    assert.equal(await h.call('admin.vm.Create.AppVM', 'dom0', { arg: 'tpl', payload: 'name=later label=red' }), '0\0');
    assert.equal(await h.call('admin.vm.Start', 'later'), '0\0');
    const uuid = h.qubesd.app.get('later')?.uuid;
    await h.close();
    const again = await startTestHost(undefined, h.dir);
    try {
      assert.equal(await again.call('admin.vm.tag.List', 'work'), '0\0audiovm-dom0\nguivm-dom0\nkept\n');
      // a restarted host boots with its qubes powered off
      assert.equal(await again.call('admin.vm.List', 'later'), `0\0later class=AppVM state=Halted uuid=${uuid}\n`);
    } finally {
      await again.close();
    }
  } finally {
    await removeDir(h.dir);
  }
});

test('a corrupt state file stops startup, is named, and is left untouched', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'qmcp-qubesd-'));
  try {
    await mkdir(join(dir, 'state'));
    const path = join(dir, 'state', 'qubes.json');
    await writeFile(path, '{"version": 1, "vms": [');
    await assert.rejects(startQubesd({ dir }), (e: Error) => e instanceof StateFileError && e.message.includes(path));
    assert.equal(await readFile(path, 'utf8'), '{"version": 1, "vms": [');
    await writeFile(path, '{"version": 1, "props": {}, "vms": []}');
    await assert.rejects(startQubesd({ dir }), StateFileError);
  } finally {
    await removeDir(dir);
  }
});

test('a host that writes its state at close leaves the file as it started until then, and holds every change after', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'qmcp-qubesd-'));
  try {
    const path = join(dir, 'state', 'qubes.json');
    const q = await startQubesd({ dir, stateAtClose: true });
    const before = await readFile(path, 'utf8').catch(() => null);
    assert.equal(await rawCall(q.socketPath, 'admin.vm.tag.Set+kept dom0 name dom0\0').then((b) => b.toString('latin1')), '0\0');
    assert.equal(await readFile(path, 'utf8').catch(() => null), before, 'no write at the change');
    await q.close();
    const again = await startQubesd({ dir });
    try {
      assert.ok(again.app.get('dom0')?.tags.includes('kept'), 'the change is in the state written at close');
    } finally {
      await again.close();
    }
  } finally {
    await removeDir(dir);
  }
});
