import { test } from 'node:test';
import assert from 'node:assert/strict';
import { REFUSED, call, json, startHost, BASE_SETTINGS, GiB, auditValid } from './helpers.js';
import type { Host } from './helpers.js';

const T0 = new Date(Date.UTC(2026, 10, 1, 12, 0, 0));

/** Outside tombstones: one the operator marked (no owner tag), one another principal removed. */
function outsideTombstones(h: Host): void {
  for (const [name, owner] of [['vault', null], ['ops-dvm', 'qmcp-owner-other-control']] as const) {
    h.vm(name)?.tags.push('qmcp-tombstone', 'qmcp-tombstone-20261101T120000Z', ...(owner ? [owner] : []));
  }
}

test('tombstone.list shows its own tombstones only: name, class, when, bytes; pool.figures splits live and tombstoned', async () => {
  const h = await startHost();
  try {
    outsideTombstones(h);
    assert.deepEqual(json(await call(h, 'qmcp.TombstoneList', '')), { tombstones: [] });
    const before = json(await call(h, 'qmcp.PoolFigures', ''));
    assert.equal(before['tombstoned'], 0);
    assert.equal(before['used'], before['live']);
    assert.equal((await call(h, 'qmcp.Remove+ai-box', '', { now: T0 })).status, 0);
    const list = json(await call(h, 'qmcp.TombstoneList', ''));
    const bytes = (list['tombstones'] as { bytes: number }[])[0]?.bytes ?? 0;
    assert.deepEqual(list, { tombstones: [{ name: 'ai-box', klass: 'AppVM', removed: T0.toISOString(), bytes }] });
    assert.ok(bytes > 0);
    const after = json(await call(h, 'qmcp.PoolFigures', ''));
    assert.equal(after['used'], before['used'], 'a tombstone still counts');
    assert.equal(after['tombstoned'], bytes);
    assert.equal(after['live'], (before['live'] as number) - bytes);
    // a malformed call is the refusal
    assert.deepEqual(await call(h, 'qmcp.TombstoneList+ai-box', ''), REFUSED);
  } finally {
    await h.done();
  }
});

test('tombstone.restore brings its own tombstone back at the birth ceiling; anything else is the refusal an absent name gets', async () => {
  const h = await startHost();
  try {
    outsideTombstones(h);
    assert.equal((await call(h, 'qmcp.Remove+ai-box', '', { now: T0 })).status, 0);
    // the operator's tombstone, another principal's, a visible qube, an outside one, an absent name: alike
    for (const name of ['vault', 'ops-dvm', 'ai-read', 'sys-firewall', 'ai-nosuch']) {
      assert.deepEqual(await call(h, `qmcp.TombstoneRestore+${name}`, ''), REFUSED, name);
    }
    assert.ok(h.vm('vault')?.tags.includes('qmcp-tombstone'), 'the outside tombstones stay as they were');
    assert.deepEqual(await call(h, 'qmcp.TombstoneRestore+ai-box', 'x'), REFUSED, 'a payload is malformed');
    const r = await call(h, 'qmcp.TombstoneRestore+ai-box', '');
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(json(r), { name: 'ai-box', tier: 'exec' });
    // it had full (a remove needs it); back at the birth ceiling, exec, and no more
    assert.deepEqual([...(h.vm('ai-box')?.tags ?? [])].sort(), ['ai-exec', 'ai-managed', 'audiovm-dom0', 'guivm-dom0', 'op-grant', 'op-keep', 'qmcp-owner-mcp-control']);
    assert.equal(h.vm('ai-box')?.features['prohibit-start'], undefined);
    assert.equal(h.vm('ai-box')?.power, 'Halted');
    assert.equal(json(await call(h, 'qmcp.Info+ai-box', ''))['name'], 'ai-box');
    // once back it is no tombstone: a second restore is refused
    assert.deepEqual(await call(h, 'qmcp.TombstoneRestore+ai-box', ''), REFUSED);
    assert.deepEqual(json(await call(h, 'qmcp.TombstoneList', '')), { tombstones: [] });
    assert.equal(await auditValid(h), true);
  } finally {
    await h.done();
  }
});

test('tombstone.restore at a birth ceiling of read comes back untiered, as the operator restores', async () => {
  const h = await startHost({ ...BASE_SETTINGS, birthCeiling: 'read' });
  try {
    assert.equal((await call(h, 'qmcp.Remove+ai-box', '', { now: T0 })).status, 0);
    assert.deepEqual(json(await call(h, 'qmcp.TombstoneRestore+ai-box', '')), { name: 'ai-box', tier: 'read' });
    assert.ok(!['ai-exec', 'ai-net', 'ai-full'].some((t) => h.vm('ai-box')?.tags.includes(t)));
  } finally {
    await h.done();
  }
});

test('tombstone.restore refuses actionably when a budget lowered since has no room, and with caps unset refuses', async () => {
  const h = await startHost();
  try {
    assert.equal((await call(h, 'qmcp.Remove+ai-box', '', { now: T0 })).status, 0);
    h.writeSettings({ ...BASE_SETTINGS, poolCapBytes: 1 * GiB });
    const r = await call(h, 'qmcp.TombstoneRestore+ai-box', '');
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.equal((json(r)['error'] as { code: string }).code, 'over-budget');
    assert.ok(h.vm('ai-box')?.tags.includes('qmcp-tombstone'), 'still a tombstone');
    const { poolCapBytes: _, ...noCap } = BASE_SETTINGS;
    h.writeSettings(noCap);
    assert.deepEqual(await call(h, 'qmcp.TombstoneRestore+ai-box', ''), REFUSED);
  } finally {
    await h.done();
  }
});
