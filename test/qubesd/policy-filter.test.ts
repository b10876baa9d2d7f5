import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { qubesdEvents } from '../../src/shared/adminapi/client.js';
import type { AdminEvent } from '../../src/shared/adminapi/wire.js';
import type { TestHost } from './helpers.js';
import { removeDir, startTestHost } from './helpers.js';

let h: TestHost;
const policyDir = (): string => join(h.dir, 'dom0', 'etc', 'qubes', 'policy.d');

before(async () => {
  h = await startTestHost();
  await mkdir(policyDir(), { recursive: true });
  await writeFile(
    join(policyDir(), '30-test.policy'),
    [
      'admin.vm.List * work @adminvm allow',
      'admin.vm.List * work @tag:ai-managed allow',
      'admin.vm.List * work vault ask',
      'admin.Events * work @adminvm allow',
      'admin.Events * work @tag:ai-managed allow',
      '',
    ].join('\n'),
  );
});
after(async () => {
  await h.close();
  await removeDir(h.dir);
});

test('admin.vm.List from a qube is filtered by policy; ask counts as deny', async () => {
  const r = await h.call('admin.vm.List', 'dom0', { src: 'work' });
  const names = r.slice(2).split('\n').filter(Boolean).map((l) => l.split(' ')[0]);
  assert.deepEqual(names, ['dom0', 'dvm']);
  assert.equal(await h.call('admin.vm.List', 'vault', { src: 'work' }), '0\0');
  // dom0 is never filtered
  assert.equal((await h.call('admin.vm.List', 'dom0')).split('\n').length - 1, 7);
});

test('a policy that fails to load denies everything', async () => {
  await writeFile(join(policyDir(), '10-broken.policy'), 'this is not a rule\n');
  try {
    assert.equal(await h.call('admin.vm.List', 'dom0', { src: 'work' }), '0\0');
  } finally {
    await writeFile(join(policyDir(), '10-broken.policy'), '');
  }
});

test('admin.Events from a qube only carries events policy allows', async () => {
  const got: AdminEvent[] = [];
  const ac = new AbortController();
  let ready!: () => void;
  const established = new Promise<void>((r) => (ready = r));
  let last!: () => void;
  const sawLast = new Promise<void>((r) => (last = r));
  const done = qubesdEvents(
    h.qubesd.socketPath,
    'dom0',
    (ev) => {
      got.push(ev);
      if (ev.event === 'connection-established') ready();
      if (ev.event === 'domain-tag-add:last') last();
    },
    ac.signal,
    'work',
  );
  await established;
  assert.equal(await h.call('admin.vm.tag.Set', 'vault', { arg: 'hidden' }), '0\0');
  assert.equal(await h.call('admin.vm.tag.Set', 'dvm', { arg: 'last' }), '0\0');
  await sawLast;
  ac.abort();
  await done;
  assert.deepEqual(
    got.map((e) => `${e.subject}:${e.event}`),
    [':connection-established', 'dvm:domain-tag-add:last'],
  );
});
