import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { footprint, used } from '../../src/dom0/create/budget.js';
import { readWriteSettings } from '../../src/dom0/create/settings.js';
import { acquireBudgetLock } from '../../src/dom0/create/lock.js';
import { openAudit } from '../../src/dom0/audit/index.js';
import { listTombstones, reapOrphan, reapTombstones, restoreTombstone, TombstoneError } from '../../src/dom0/tombstones/operator.js';
import type { ReapOps } from '../../src/dom0/tombstones/operator.js';
import { Qubesd } from '../../src/dom0/qubesd.js';
import { tryLock } from '../../src/dom0/lockfile.js';
import type { HeldLock } from '../../src/dom0/lockfile.js';
import { startProxy } from '../../verify/faults/proxy.js';
import type { Verdict } from '../../verify/faults/proxy.js';
import { weakened } from '../plans/helpers.js';
import { BASE_SETTINGS, PRINCIPAL, REFUSED, auditValid, call, json, startHost } from './helpers.js';
import type { Host } from './helpers.js';

const DAY = 24 * 3600 * 1000;
const T0 = new Date(Date.UTC(2026, 10, 1, 12, 0, 0));

function ops(h: Host): ReapOps {
  return { qubesd: h.qubesd, settings: readWriteSettings(h.root, () => undefined), audit: openAudit({ root: h.root }), principals: [PRINCIPAL], lock: () => acquireBudgetLock(h.root, 30_000) };
}

async function usedNow(h: Host): Promise<number> {
  return used(h.qubesd, readWriteSettings(h.root, () => undefined), 'qmcp-owner-mcp-control');
}

test('tombstone: remove hides, keeps data and budget, holds the name; restore brings it back untiered', async () => {
  const h = await startHost();
  try {
    await h.qubesd.call('admin.vm.Start', 'ai-box');
    await h.qubesd.call('admin.vm.property.Set', 'ai-box', 'autostart', 'True');
    const before = await usedNow(h);
    const r = await call(h, 'qmcp.Remove+ai-box', '', { now: T0 });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(json(r), { name: 'ai-box', removed: true });
    const vm = h.vm('ai-box');
    assert.ok(vm, 'data kept');
    assert.equal(vm.power, 'Halted');
    assert.equal(vm.props['autostart'], false);
    assert.deepEqual([...vm.tags].sort(), ['audiovm-dom0', 'guivm-dom0', 'op-grant', 'op-keep', 'qmcp-owner-mcp-control', 'qmcp-tombstone', 'qmcp-tombstone-20261101T120000Z']);
    // qubesd itself refuses to start it, whoever asks
    assert.equal(vm.features['prohibit-start'], 'qmcp: tombstone');
    await assert.rejects(h.qubesd.call('admin.vm.Start', 'ai-box'), /prohibited/);
    // Invisible: every call about it is the refusal an absent qube gets.
    for (const [full, payload] of [
      ['qmcp.Remove+ai-box', ''],
      ['qmcp.SetProperty+ai-box', { name: 'memory', value: 512 }],
      ['qmcp.Clone+ai-box', { name: 'ai-x' }],
    ] as const) {
      const absent = await call(h, full.replace('ai-box', 'ai-nosuch'), payload);
      assert.deepEqual(await call(h, full, payload), absent);
      assert.deepEqual(absent, REFUSED);
    }
    // Still counted; the name stays taken.
    assert.equal(await usedNow(h), before);
    assert.deepEqual(await call(h, 'qmcp.Create+', { name: 'ai-box', template: 'ai-tpl' }), REFUSED);

    const list = await listTombstones(h.qubesd);
    assert.deepEqual(list.map((t) => [t.name, t.since]), [['ai-box', T0.toISOString()]]);
    await restoreTombstone(ops(h), 'ai-box');
    assert.deepEqual([...(h.vm('ai-box')?.tags ?? [])].sort(), ['ai-managed', 'audiovm-dom0', 'guivm-dom0', 'op-grant', 'op-keep', 'qmcp-owner-mcp-control']);
    assert.equal(h.vm('ai-box')?.features['prohibit-start'], undefined, 'restore lifts the start hold');
    // Back untiered: read only in least-privilege.
    assert.deepEqual(await call(h, 'qmcp.Remove+ai-box', ''), REFUSED);
    assert.equal(await auditValid(h), true);
  } finally {
    await h.done();
  }
});

test('tombstone: remove refuses while other qubes depend on it', async () => {
  const h = await startHost();
  try {
    // ai-box uses ai-dvm as default_dispvm: a visible user, so the error may say so.
    const r = await call(h, 'qmcp.Remove+ai-dvm', '');
    assert.equal(r.status, 1);
    assert.equal((json(r)['error'] as { code: string }).code, 'in_use');
    // Its own tombstones are the agent's world too: the error says so, naming none of them.
    assert.equal((await call(h, 'qmcp.Remove+ai-box', '')).status, 0);
    const byTomb = await call(h, 'qmcp.Remove+ai-dvm', '');
    assert.equal(byTomb.status, 1, byTomb.stdout + byTomb.stderr);
    assert.deepEqual(json(byTomb)['error'], { code: 'in_use', message: 'qube is in use by 1 removed qube(s) kept as tombstones until the operator restores or reaps them' });
    await restoreTombstone(ops(h), 'ai-box');
    h.vm('ai-box')?.tags.push('ai-full');
    // An outside user makes it the uniform refusal.
    h.vm('ai-locked')?.tags.push('ai-full');
    await h.qubesd.call('admin.vm.property.Set', 'vault', 'netvm', 'ai-egress');
    h.vm('ai-egress')?.tags.push('ai-full');
    await h.qubesd.call('admin.vm.property.Set', 'ai-box', 'netvm', '');
    await h.qubesd.call('admin.vm.property.Set', 'ai-dvm', 'netvm', '');
    assert.deepEqual(await call(h, 'qmcp.Remove+ai-egress', ''), REFUSED);
    assert.ok(h.vm('ai-egress')?.tags.includes('ai-managed'));
  } finally {
    await h.done();
  }
});

test('reap: destroys only past retention, and each veto holds on its own', async () => {
  const h = await startHost();
  try {
    for (const q of ['ai-read', 'ai-execbox']) h.vm(q)?.tags.push('ai-full');
    await h.qubesd.call('admin.vm.property.Set', 'ai-box', 'default_dispvm', '');
    for (const q of ['ai-box', 'ai-read', 'ai-execbox', 'ai-locked', 'ai-dvm']) {
      assert.equal((await call(h, `qmcp.Remove+${q}`, '', { now: T0 })).status, 0, q);
    }
    // Vetoes: umbrella back on, running (the operator lifted its start hold), undatable marker, future marker.
    await h.qubesd.call('admin.vm.tag.Set', 'ai-read', 'ai-managed');
    await h.qubesd.call('admin.vm.feature.Remove', 'ai-execbox', 'prohibit-start');
    await h.qubesd.call('admin.vm.Start', 'ai-execbox');
    const locked = h.vm('ai-locked');
    assert.ok(locked);
    locked.tags = locked.tags.map((t) => (t.startsWith('qmcp-tombstone-') ? 'qmcp-tombstone-20261341T000000Z' : t));
    const dvm = h.vm('ai-dvm');
    assert.ok(dvm);
    dvm.tags = dvm.tags.map((t) => (t.startsWith('qmcp-tombstone-') ? 'qmcp-tombstone-20991231T000000Z' : t));

    const early = await reapTombstones(ops(h), new Date(T0.getTime() + 6 * DAY));
    assert.deepEqual(early.reaped, []);
    assert.ok(h.vm('ai-box'));

    const late = await reapTombstones(ops(h), new Date(T0.getTime() + 8 * DAY));
    assert.deepEqual(late.reaped, ['ai-box']);
    assert.equal(h.vm('ai-box'), undefined);
    assert.deepEqual(
      Object.fromEntries(late.kept.map((k) => [k.name, k.reason])),
      {
        'ai-dvm': 'marker in the future',
        'ai-execbox': 'not halted',
        'ai-locked': 'undatable marker',
        'ai-read': 'still carries the umbrella',
      },
    );

    // An unreadable retention setting destroys nothing at all.
    await h.qubesd.call('admin.vm.Kill', 'ai-execbox');
    h.writeSettings({ ...BASE_SETTINGS, tombstoneRetentionDays: 'seven' });
    const none = await reapTombstones(ops(h), new Date(T0.getTime() + 80 * DAY));
    assert.deepEqual(none.reaped, []);
    assert.ok(none.refused);
    assert.ok(h.vm('ai-execbox'));
    h.writeSettings({ ...BASE_SETTINGS, tombstoneRetentionDays: 30 });
    assert.deepEqual((await reapTombstones(ops(h), new Date(T0.getTime() + 29 * DAY))).reaped, []);
    assert.deepEqual((await reapTombstones(ops(h), new Date(T0.getTime() + 31 * DAY))).reaped, ['ai-execbox']);
    assert.equal(await auditValid(h), true);
  } finally {
    await h.done();
  }
});

test('reap: an invalid clock destroys nothing; weakened, a veto without that check is caught', async () => {
  // NaN compares false both ways, so without the check an Invalid Date reads as "past retention"
  const url = weakened('dom0/tombstones/operator.js', "return 'invalid clock';", ';');
  const { reapTombstones: weak } = (await import(url)) as { reapTombstones: typeof reapTombstones };
  const h = await startHost();
  try {
    assert.equal((await call(h, 'qmcp.Remove+ai-box', '', { now: T0 })).status, 0);
    const r = await reapTombstones(ops(h), new Date(Number.NaN));
    assert.deepEqual(r, { reaped: [], kept: [{ name: 'ai-box', reason: 'invalid clock' }] });
    assert.ok(h.vm('ai-box'));
    assert.deepEqual((await weak(ops(h), new Date(Number.NaN))).reaped, ['ai-box'], 'weakened');
  } finally {
    await h.done();
  }
});

/**
 * The reaper has looked at ai-box for the last time and its admin.vm.Remove
 * is held at the proxy; then the operator restores ai-box. The restore's
 * lock first tries once and says when it found the lock taken; the reaper
 * is let go once the restore either waits so or is done. A restore that
 * reported done while the reaper destroyed the qube after it is the failure.
 * With ORPHAN the reap is the operator's reap by name of an orphan.
 */
async function reapRacingRestore(url?: string, orphan = false): Promise<{ reaped: string[]; restore: string }> {
  const mod = (url ? await import(url) : { reapTombstones, reapOrphan, restoreTombstone }) as { reapTombstones: typeof reapTombstones; reapOrphan: typeof reapOrphan; restoreTombstone: typeof restoreTombstone };
  const h = await startHost();
  const proxy = await startProxy(h.sim.socketPath, join(h.root, 'proxy.sock'));
  try {
    assert.equal((await call(h, 'qmcp.Remove+ai-box', '', { now: T0 })).status, 0);
    let reached!: () => void;
    const atRemove = new Promise<void>((resolve) => (reached = resolve));
    let go!: () => void;
    const release = new Promise<void>((resolve) => (go = resolve));
    proxy.decide = async (c): Promise<Verdict> => {
      if (c.method === 'admin.vm.Remove') {
        reached();
        await release;
      }
      return 'forward';
    };
    const reaper = { ...ops(h), qubesd: new Qubesd(proxy.socketPath) };
    // the operator's reap by name of an orphan: to it, ai-box's principal reads as removed
    const reaping = orphan ? mod.reapOrphan({ ...reaper, principals: ['ctl-gone'] }, 'ai-box', ['ai-managed']) : mod.reapTombstones(reaper, new Date(T0.getTime() + 8 * DAY));
    await atRemove;
    let found!: () => void;
    const foundTaken = new Promise<void>((resolve) => (found = resolve));
    const lockDir = join(h.root, 'var', 'lib', 'qmcp', 'locks');
    const lock = async (): Promise<HeldLock | null> => {
      mkdirSync(lockDir, { recursive: true, mode: 0o700 });
      const first = await tryLock(join(lockDir, 'budget.lock'));
      if (first) return first;
      found();
      return acquireBudgetLock(h.root, 30_000);
    };
    const restoring = mod.restoreTombstone({ ...ops(h), lock }, 'ai-box').then(
      () => 'restored',
      (err: unknown) => (err instanceof TombstoneError ? `refused: ${err.detail}` : Promise.reject(err)),
    );
    await Promise.race([restoring, foundTaken]);
    go();
    const [reaped, restore] = await Promise.all([reaping, restoring]);
    if (restore === 'restored') assert.ok(h.vm('ai-box'), 'the restore reported ai-box back, and the reaper destroyed it after');
    assert.equal(await auditValid(h), true);
    return { reaped: reaped.reaped, restore };
  } finally {
    await proxy.close();
    await h.done();
  }
}

test('reap: a restore racing the reaper, or the operator\'s reap of an orphan, waits for its destroy and finds no tombstone; it never reports back a qube the reaper then destroys', async () => {
  assert.deepEqual(await reapRacingRestore(), { reaped: ['ai-box'], restore: 'refused: not a tombstone' });
  assert.deepEqual(await reapRacingRestore(undefined, true), { reaped: ['ai-box'], restore: 'refused: not a tombstone' });
});

test('weakened: a reaper, an orphan reap or a restore that does not take the budget lock is caught destroying a restored qube', async () => {
  const reaperUnlocked = weakened('dom0/tombstones/operator.js', 'const held = await ops.lock();', 'const held = { release: async () => undefined };');
  await assert.rejects(reapRacingRestore(reaperUnlocked), /reaper destroyed it after/);
  const restoreUnlocked = weakened('dom0/tombstones/operator.js', 'const lock = await ops.lock();', 'const lock = { release: async () => undefined };');
  await assert.rejects(reapRacingRestore(restoreUnlocked), /reaper destroyed it after/);
  const orphanUnlocked = weakened('dom0/tombstones/operator.js', 'const orphanLock = await ops.lock();', 'const orphanLock = { release: async () => undefined };');
  await assert.rejects(reapRacingRestore(orphanUnlocked, true), /reaper destroyed it after/);
});

test('tombstone: counted in the budget so a create at the edge is refused', async () => {
  const h = await startHost();
  try {
    const base = await usedNow(h);
    const child = (await footprint(h.qubesd, 'ai-box')).total;
    h.writeSettings({ ...BASE_SETTINGS, poolCapBytes: base + child - 1 });
    await h.qubesd.call('admin.vm.property.Set', 'ai-box', 'default_dispvm', '');
    assert.equal((await call(h, 'qmcp.Remove+ai-box', '')).status, 0);
    const r = await call(h, 'qmcp.Create+', { name: 'ai-n', template: 'ai-tpl' });
    assert.equal(r.status, 1);
    assert.match(r.stdout, /over_budget/);
  } finally {
    await h.done();
  }
});

function qmcp(args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  const bin = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bin', 'qmcp.js');
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [bin, ...args], (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') reject(err);
      else resolve({ status: err ? (err.code as number) : 0, stdout, stderr });
    });
  });
}

test('qmcp dom0 tombstones list|restore|reap on a simulated dom0', async () => {
  const h = await startHost();
  try {
    await h.qubesd.call('admin.vm.property.Set', 'ai-box', 'default_dispvm', '');
    assert.equal((await call(h, 'qmcp.Remove+ai-box', '', { now: T0 })).status, 0);
    const common = ['--root', h.root, '--qubesd-socket', h.sim.socketPath, '--json'];
    const listed = await qmcp(['dom0', 'tombstones', 'list', ...common]);
    assert.equal(listed.status, 0, listed.stderr);
    assert.deepEqual(JSON.parse(listed.stdout), [{ name: 'ai-box', klass: 'AppVM', state: 'Halted', since: T0.toISOString() }]);
    const reaped = await qmcp(['dom0', 'tombstones', 'reap', ...common]);
    assert.equal(reaped.status, 0, reaped.stderr);
    assert.deepEqual(JSON.parse(reaped.stdout).reaped, ['ai-box'], 'T0 is long past the 7-day retention');
    assert.equal(h.vm('ai-box'), undefined);
    assert.equal((await call(h, 'qmcp.Remove+ai-read', '')).status, 126);
    assert.equal((await qmcp(['dom0', 'tombstones', 'restore', 'ai-read', ...common])).status, 1, 'not a tombstone');
    assert.equal((await qmcp(['dom0', 'tombstones', 'frobnicate', ...common])).status, 2);
    assert.equal(await auditValid(h), true);
  } finally {
    await h.done();
  }
});

test('tombstone: a start decided before the remove and landing after it never runs the tombstone', async () => {
  // the qubesd calls of the start go through a proxy that holds its admin.vm.Start until the remove is done
  const h = await startHost();
  const proxy = await startProxy(h.sim.socketPath, join(h.root, 'proxy.sock'));
  try {
    let held!: () => void;
    const release = new Promise<void>((resolve) => (held = resolve));
    let reached!: () => void;
    const atStart = new Promise<void>((resolve) => (reached = resolve));
    proxy.decide = async (c): Promise<Verdict> => {
      if (c.method === 'admin.vm.Start' && c.dest === 'ai-box') {
        reached();
        await release;
      }
      return 'forward';
    };
    const starting = call(h, 'qmcp.Start+ai-box', '', { qubesd: new Qubesd(proxy.socketPath) });
    await atStart;
    const removed = await call(h, 'qmcp.Remove+ai-box', '', { now: T0 });
    assert.equal(removed.status, 0, removed.stdout + removed.stderr);
    held();
    const started = await starting;
    const vm = h.vm('ai-box');
    assert.equal(vm?.power, 'Halted', 'the tombstone is not running');
    assert.ok(vm?.tags.some((t) => t.startsWith('qmcp-tombstone-')));
    // to the agent, the late start is what a start of an absent qube gets
    assert.deepEqual(started, REFUSED);
    assert.equal(await auditValid(h), true);
  } finally {
    await proxy.close();
    await h.done();
  }
});

test('tombstone: restore lifts the start hold entombing set, never an operator\'s own', async () => {
  const h = await startHost();
  try {
    // an operator's own hold stays where it was
    await h.qubesd.call('admin.vm.feature.Set', 'ai-dvm', 'prohibit-start', 'operator: keep it down');
    await h.qubesd.call('admin.vm.property.Set', 'ai-box', 'default_dispvm', '');
    assert.equal((await call(h, 'qmcp.Remove+ai-dvm', '', { now: T0 })).status, 0);
    assert.equal(h.vm('ai-dvm')?.features['prohibit-start'], 'operator: keep it down');
    await restoreTombstone(ops(h), 'ai-dvm');
    assert.equal(h.vm('ai-dvm')?.features['prohibit-start'], 'operator: keep it down');
  } finally {
    await h.done();
  }
});

test('tombstone: a restore that fails at any of its calls leaves the qube hidden, and the next restore finishes it', async () => {
  const h = await startHost();
  const proxy = await startProxy(h.sim.socketPath, join(h.root, 'proxy.sock'));
  try {
    const viaProxy = new Qubesd(proxy.socketPath);
    const restore = (q: Qubesd): Promise<void> => restoreTombstone({ ...ops(h), qubesd: q }, 'ai-box');
    // how many calls a restore makes
    assert.equal((await call(h, 'qmcp.Remove+ai-box', '', { now: T0 })).status, 0);
    proxy.calls.length = 0;
    await restore(viaProxy);
    const total = proxy.calls.length;
    assert.ok(total >= 5, `${total} calls`);
    for (let n = 1; n <= total; n++) {
      h.vm('ai-box')?.tags.push('ai-full');
      assert.equal((await call(h, 'qmcp.Remove+ai-box', '', { now: T0 })).status, 0, `remove before failing call ${n}`);
      proxy.calls.length = 0;
      proxy.decide = (c): Verdict => (c.n === n ? 'fail' : 'forward');
      await restore(viaProxy).catch(() => undefined);
      proxy.decide = () => 'forward';
      const info = await call(h, 'qmcp.Info+ai-box');
      const done = info.status === 0;
      // hidden unless it got to its end (a failure of the final read-back only)
      if (!done) assert.deepEqual(info, REFUSED, `call ${n} failed: hidden`);
      if (!done) await restore(h.qubesd);
      assert.equal((await call(h, 'qmcp.Info+ai-box')).status, 0, `call ${n} failed: finished by the next restore`);
      assert.deepEqual([...(h.vm('ai-box')?.tags ?? [])].sort(), ['ai-managed', 'audiovm-dom0', 'guivm-dom0', 'op-grant', 'op-keep', 'qmcp-owner-mcp-control']);
    }
  } finally {
    await proxy.close();
    await h.done();
  }
});
