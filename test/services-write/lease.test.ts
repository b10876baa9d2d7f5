import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openAudit, readTail } from '../../src/dom0/audit/index.js';
import type { AuditEntry } from '../../src/dom0/audit/index.js';
import { acquireBudgetLock } from '../../src/dom0/create/lock.js';
import { readWriteSettings } from '../../src/dom0/create/settings.js';
import { checkFeatureValue } from '../../src/dom0/create/features.js';
import { expireLeases } from '../../src/dom0/leases/expire.js';
import type { LeaseOps } from '../../src/dom0/leases/expire.js';
import type { Snapshot } from '../../src/dom0/service/snapshot.js';
import { restoreTombstone } from '../../src/dom0/tombstones/operator.js';
import { LEASE_FEATURE } from '../../src/shared/model/lease.js';
import { parseSettings } from '../../src/shared/model/settings.js';
import { weakened } from '../plans/helpers.js';
import { BASE_SETTINGS, REFUSED, auditValid, call, json, startHost } from './helpers.js';
import type { Host, SettingsFile } from './helpers.js';

const T0 = new Date(Date.UTC(2026, 10, 1, 12, 0, 0));
const at = (seconds: number): Date => new Date(T0.getTime() + seconds * 1000);
const LEASED = { ...BASE_SETTINGS, lease: { default: '1h', max: '1d' } };

type Expire = typeof expireLeases;

function ops(h: Host): LeaseOps {
  return {
    qubesd: h.qubesd,
    settings: readWriteSettings(h.root, () => undefined),
    audit: openAudit({ root: h.root }),
    lock: () => acquireBudgetLock(h.root, 5_000),
  };
}

async function auditEntries(h: Host): Promise<AuditEntry[]> {
  return (await readTail(h.root, 100_000)).map((l) => l.entry).filter((e): e is AuditEntry => e !== null);
}

function code(r: { stdout: string }): string {
  return ((JSON.parse(r.stdout) as { error: { code: string } }).error).code;
}

/** A host under `settings` where the agent has created ai-new at `born` (leased when the settings lease); closed after `body`. */
async function withNew(body: (h: Host) => Promise<void>, settings: SettingsFile = LEASED, born: Date = T0): Promise<void> {
  const h = await startHost(settings);
  try {
    assert.equal((await call(h, 'qmcp.Create+', { name: 'ai-new', template: 'ai-tpl' }, { now: born })).status, 0);
    await body(h);
  } finally {
    await h.done();
  }
}

test('lease settings: absent is no expiry; durations read; a malformed one is null with a problem', () => {
  assert.deepEqual(parseSettings({}).settings.lease, { defaultSeconds: null, maxSeconds: null });
  assert.deepEqual(parseSettings({ lease: { default: '8h', max: '7d' } }).settings.lease, { defaultSeconds: 8 * 3600, maxSeconds: 7 * 86400 });
  assert.deepEqual(parseSettings({ lease: { default: 600, max: 'none' } }).settings.lease, { defaultSeconds: 600, maxSeconds: null });
  for (const bad of [
    'none',
    [],
    { default: '8h', max: '1h' }, // default past the maximum
    { default: 'none', max: '1d' }, // no expiry by default under a bounded maximum
    { default: 0 },
    { default: -5 },
    { default: 1.5 },
    { default: '8 h' },
    { default: '8w' },
    { default: '1h', extra: 1 },
    { default: 1e12 },
  ]) {
    const r = parseSettings({ lease: bad });
    assert.equal(r.settings.lease, null, JSON.stringify(bad));
    assert.ok(r.problems.some((p) => p.key === 'lease'), JSON.stringify(bad));
  }
  // the operator cannot hand the expiry to the agent
  const allow = parseSettings({ featureAllowlist: ['gui', LEASE_FEATURE] });
  assert.deepEqual(allow.settings.featureAllowlist, []);
  assert.ok(allow.problems.some((p) => p.key === 'featureAllowlist'));
});

test('lease: the feature is refused to the agent whatever the allowlist says', async () => {
  const snapshot = {} as Snapshot;
  assert.notEqual(checkFeatureValue(snapshot, [LEASE_FEATURE], LEASE_FEATURE, '2099-01-01T00:00:00Z'), null);
  // weakened: a write rule that only keeps `internal` out lets the expiry through
  const url = weakened('dom0/create/features.js', 'if (RESERVED_FEATURES.includes(feature))', "if (feature === 'internal')");
  const { checkFeatureValue: weak } = (await import(url)) as { checkFeatureValue: typeof checkFeatureValue };
  assert.equal(weak(snapshot, [LEASE_FEATURE], LEASE_FEATURE, '2099-01-01T00:00:00Z'), null);

  await withNew(async (h) => {
    const before = h.vm('ai-new')?.features[LEASE_FEATURE];
    assert.deepEqual(await call(h, 'qmcp.SetFeature+ai-new', { name: LEASE_FEATURE, value: '2099-01-01T00:00:00Z' }), REFUSED);
    assert.equal(h.vm('ai-new')?.features[LEASE_FEATURE], before);
  }, { ...LEASED, featureAllowlist: [LEASE_FEATURE] });
});

test('lease: create, disposable template and clone carry the default lease, or a shorter one asked for', async () => {
  await withNew(async (h) => {
    assert.equal(h.vm('ai-new')?.features[LEASE_FEATURE], '2026-11-01T13:00:00Z');
    const info = await call(h, 'qmcp.Info+ai-new', '');
    assert.equal(json(info)['lease_expires'], '2026-11-01T13:00:00Z');
    // an operator's qube has no lease
    assert.equal(json(await call(h, 'qmcp.Info+ai-box', ''))['lease_expires'], null);

    assert.equal((await call(h, 'qmcp.CreateDispTemplate+', { name: 'ai-dt', template: 'ai-tpl', leaseSeconds: 60 }, { now: T0 })).status, 0);
    assert.equal(h.vm('ai-dt')?.features[LEASE_FEATURE], '2026-11-01T12:01:00Z');
    assert.equal((await call(h, 'qmcp.Clone+ai-box', { name: 'ai-copy', leaseSeconds: 1800 }, { now: at(600) })).status, 0);
    assert.equal(h.vm('ai-copy')?.features[LEASE_FEATURE], '2026-11-01T12:40:00Z', 'a clone is born with a lease of its own');

    // longer than the default: told, with the bound; nothing made
    const long = await call(h, 'qmcp.Create+', { name: 'ai-long', template: 'ai-tpl', leaseSeconds: 3601 }, { now: T0 });
    assert.equal(long.status, 1);
    assert.equal(code(long), 'lease_too_long');
    assert.match(long.stdout, /3600 seconds/);
    for (const bad of [0, -1, 1.5, '60', null]) {
      assert.deepEqual(await call(h, 'qmcp.Create+', { name: 'ai-bad', template: 'ai-tpl', leaseSeconds: bad }), REFUSED, String(bad));
    }
    assert.equal(h.vm('ai-long'), undefined);
    assert.equal(h.vm('ai-bad'), undefined);
    assert.equal(await auditValid(h), true);
  });
});

test('lease: no lease setting creates without expiry; a malformed one refuses creates and renewals, told', async () => {
  await withNew(async (h) => {
    assert.equal(h.vm('ai-new')?.features[LEASE_FEATURE], undefined);
    const none = await call(h, 'qmcp.Renew+ai-new', {});
    assert.equal(code(none), 'no_lease');
    h.writeSettings({ ...BASE_SETTINGS, lease: { default: '2d', max: '1d' } });
    for (const r of [await call(h, 'qmcp.Create+', { name: 'ai-two', template: 'ai-tpl' }), await call(h, 'qmcp.Clone+ai-new', { name: 'ai-two' }), await call(h, 'qmcp.Renew+ai-new', {})]) {
      assert.equal(r.status, 1);
      assert.equal(code(r), 'lease_unset');
    }
    assert.equal(h.vm('ai-two'), undefined);
  }, BASE_SETTINGS);
});

test('lease: renew runs from now up to the maximum; past it is told; a lapsed lease is not brought back', async () => {
  await withNew(async (h) => {
    const r = await call(h, 'qmcp.Renew+ai-new', { seconds: 86400 }, { now: at(1800) });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(json(r), { name: 'ai-new', lease_expires: '2026-11-02T12:30:00Z' });
    // the default lease when no seconds are given
    assert.equal(json(await call(h, 'qmcp.Renew+ai-new', {}, { now: at(3600) }))['lease_expires'], '2026-11-01T14:00:00Z');
    const past = await call(h, 'qmcp.Renew+ai-new', { seconds: 86401 }, { now: at(3600) });
    assert.equal(code(past), 'lease_too_long');
    assert.match(past.stdout, /86400 seconds/);
    assert.equal(h.vm('ai-new')?.features[LEASE_FEATURE], '2026-11-01T14:00:00Z', 'a refused renewal changes nothing');
    // lapsed, the reaper not yet run: the qube is ending, renewal refused
    assert.deepEqual(await call(h, 'qmcp.Renew+ai-new', {}, { now: at(7200) }), REFUSED);
    // renewing needs the tier that may start the qube: a read-only qube is refused like an absent one
    assert.deepEqual(await call(h, 'qmcp.Renew+ai-read', {}), await call(h, 'qmcp.Renew+ai-nosuch', {}));
    const entries = await auditEntries(h);
    assert.ok(entries.some((e) => e.operation === 'renew' && e.qubes.includes('ai-new')), 'renewals are audited');
    assert.equal(await auditValid(h), true);
  });
});

/** Starts ai-new (running, as an agent would use it; its one-hour lease from T0); then the reaper at `when`. */
async function lapse(h: Host, expire: Expire, when: Date): Promise<Awaited<ReturnType<Expire>>> {
  assert.equal((await call(h, 'qmcp.Start+ai-new', '')).status, 0);
  return expire(ops(h), when);
}

test('lease: at expiry the reaper ends the qube as a remove would: halted, a tombstone, restorable; the agent is refused after', async () => {
  await withNew(async (h) => {
    const early = await lapse(h, expireLeases, at(3599));
    assert.deepEqual(early, { expired: [], kept: [] });
    assert.equal(h.vm('ai-new')?.power, 'Running');

    const r = await expireLeases(ops(h), at(3600));
    assert.deepEqual(r.expired, ['ai-new']);
    const vm = h.vm('ai-new');
    assert.ok(vm, 'the data is kept');
    assert.equal(vm.power, 'Halted');
    assert.ok(vm.tags.includes('qmcp-tombstone') && !vm.tags.includes('ai-managed'));
    // the uniform refusal, as for an absent qube
    for (const full of ['qmcp.Info+ai-new', 'qmcp.Start+ai-new', 'qmcp.Renew+ai-new']) {
      assert.deepEqual(await call(h, full, full.startsWith('qmcp.Renew') ? {} : ''), REFUSED, full);
    }
    const entries = await auditEntries(h);
    assert.ok(entries.some((e) => e.operation === 'lease.expire' && e.principal === 'qmcp-reaper' && e.qubes.includes('ai-new')));

    await restoreTombstone({ qubesd: h.qubesd, settings: readWriteSettings(h.root, () => undefined), audit: openAudit({ root: h.root }), lock: () => acquireBudgetLock(h.root, 5_000) }, 'ai-new');
    assert.ok(h.vm('ai-new')?.tags.includes('ai-managed'), 'restored like any removed qube');
    // back with a fresh default lease, so the next run does not end it again, and no restore lifts a lease
    const relet = h.vm('ai-new')?.features[LEASE_FEATURE];
    assert.ok(relet !== undefined && relet > '2026-11-01T13:00:00Z', relet);
    assert.deepEqual((await expireLeases(ops(h), at(3600))).expired, []);
    assert.equal(await auditValid(h), true);
  });
});

test('lease: weakened, a reaper that destroys instead of entombing is caught', async () => {
  await withNew(async (h) => {
    const url = weakened('dom0/leases/expire.js', 'await retire(qubesd, settings, ownerOf(fresh.tags), fresh, now);', "await qubesd.call('admin.vm.Kill', q.name); await qubesd.call('admin.vm.Remove', q.name);");
    const { expireLeases: weak } = (await import(url)) as { expireLeases: Expire };
    await lapse(h, weak, at(3600));
    // the check the real reaper passes above: the qube is kept
    assert.equal(h.vm('ai-new'), undefined);
  });
});

test('lease: the reaper\'s vetoes: not due, outside the umbrella, unreadable, in use, hidden', async () => {
  await withNew(async (h) => {
    assert.equal((await call(h, 'qmcp.CreateDispTemplate+', { name: 'ai-dt', template: 'ai-tpl' }, { now: T0 })).status, 0);
    // the operator's own qube with the feature: never the reaper's
    await h.qubesd.call('admin.vm.feature.Set', 'vault', LEASE_FEATURE, '2026-11-01T12:00:00Z');
    // a value dom0 never writes
    await h.qubesd.call('admin.vm.feature.Set', 'ai-box', LEASE_FEATURE, 'soon');
    // ai-new uses ai-dt: kept until it changes, as remove would refuse
    await h.qubesd.call('admin.vm.property.Set', 'ai-new', 'default_dispvm', 'ai-dt');
    // a qube still being made
    await h.qubesd.call('admin.vm.feature.Set', 'ai-read', LEASE_FEATURE, '2026-11-01T12:00:00Z');
    await h.qubesd.call('admin.vm.tag.Set', 'ai-read', 'qmcp-incomplete');
    await h.qubesd.call('admin.vm.tag.Set', 'ai-read', 'qmcp-owner-mcp-control');

    const r = await expireLeases(ops(h), at(3600));
    const kept = Object.fromEntries(r.kept.map((k) => [k.name, k.reason]));
    assert.deepEqual(r.expired, ['ai-new'], 'ai-new went first, so ai-dt was still in use');
    assert.equal(kept['vault'], 'outside the umbrella');
    assert.equal(kept['ai-box'], 'unreadable expiry');
    assert.equal(kept['ai-read'], 'hidden (being created or removed)');
    assert.match(kept['ai-dt'] ?? '', /^in use by/);
    for (const q of ['vault', 'ai-box', 'ai-read', 'ai-dt']) assert.ok(h.vm(q)?.tags.includes('qmcp-tombstone') !== true, q);
    // next run: its user is a tombstone of its own now, still a user
    const again = await expireLeases(ops(h), at(3600));
    assert.deepEqual(again.expired, []);
  });
});

/** Settings the reaper cannot use: unreadable, or a lease setting it cannot read. */
const UNUSABLE: readonly { what: string; write(h: Host): void }[] = [
  { what: 'settings not JSON', write: (h) => writeFileSync(join(h.root, 'etc', 'qmcp', 'settings.json'), '{"lease": ') },
  { what: 'lease malformed', write: (h) => h.writeSettings({ ...BASE_SETTINGS, lease: { default: '2d', max: '1d' } }) },
];

test('lease: with settings it cannot use, the reaper ends no lease and says why; weakened, one that reads on is caught', async () => {
  // weakened: without the refusal, the fallback settings (the default umbrella, which these hosts use) end the lapsed qube
  const url = weakened('dom0/leases/expire.js', 'if (settings.lease === null) {', 'if (false) {');
  const { expireLeases: weak } = (await import(url)) as { expireLeases: Expire };
  for (const bad of UNUSABLE) {
    await withNew(async (h) => {
      bad.write(h);
      const r = await expireLeases(ops(h), at(7200));
      assert.deepEqual(r.expired, [], bad.what);
      assert.match(r.refused ?? '', /nothing expired/, bad.what);
      assert.ok(h.vm('ai-new')?.tags.includes('ai-managed'), bad.what);
      const refused = (await auditEntries(h)).filter((e) => e.operation === 'lease.expire');
      assert.deepEqual(refused.map((e) => e.result), ['refused'], bad.what);

      assert.deepEqual((await weak(ops(h), at(7200))).expired, ['ai-new'], `weakened, ${bad.what}`);
    });
  }
});

test('lease: the reaper timer\'s run with unreadable settings ends nothing, says why in its journal, exits 1', async () => {
  await withNew(async (h) => {
    // ai-new's lease, from T0, has lapsed at any time the test runs
    UNUSABLE[0]?.write(h);
    const reaper = join(import.meta.dirname, '..', '..', 'src', 'dom0', 'reaper-main.js');
    // not spawnSync: the simulated qubesd answers from this process
    const r = await new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
      const env = { ...process.env, QMCP_ROOT: h.root, QMCP_QUBESD_SOCKET: h.sim.socketPath };
      execFile(process.execPath, [reaper], { env }, (err, stdout, stderr) => resolve({ status: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr }));
    });
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stdout, /^nothing expired: the lease setting is unusable/m);
    assert.doesNotMatch(r.stdout, /^lease over/m);
    assert.ok(h.vm('ai-new')?.tags.includes('ai-managed'));
  });
});

/** Runs the qmcp command line; its status and output (async: the simulated qubesd answers from this process). */
function qmcp(args: readonly string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const bin = join(import.meta.dirname, '..', '..', '..', 'bin', 'qmcp.js');
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], (err, stdout, stderr) => resolve({ status: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr }));
  });
}

test('qmcp dom0 leases list|expire --now TIME: the timer\'s lease step at a time the operator names', async () => {
  // a lease from the real clock, so only a later --now is past it
  const born = new Date();
  await withNew(async (h) => {
    const later = new Date(born.getTime() + 2 * 3600_000).toISOString().slice(0, 19) + 'Z';
    const common = ['--root', h.root, '--qubesd-socket', h.sim.socketPath];
    const listed = await qmcp(['dom0', 'leases', 'list', ...common, '--json']);
    assert.equal(listed.status, 0, listed.stderr);
    assert.deepEqual(JSON.parse(listed.stdout), [{ name: 'ai-new', expires: h.vm('ai-new')?.features[LEASE_FEATURE], over: false }]);
    assert.match((await qmcp(['dom0', 'leases', 'list', ...common, '--now', later])).stdout, /^"ai-new" {2}expires "[^"]+" {2}\(over\)$/m);
    // now: not over, nothing ends (a command that ended what it lists would fail here)
    const now = await qmcp(['dom0', 'leases', 'expire', ...common]);
    assert.equal(now.status, 0, now.stderr);
    assert.equal(now.stdout, '');
    assert.ok(h.vm('ai-new')?.tags.includes('ai-managed'));
    // at the later time: ended, a tombstone (a command that ignored --now would fail here)
    const ended = await qmcp(['dom0', 'leases', 'expire', ...common, '--now', later]);
    assert.equal(ended.status, 0, ended.stderr);
    assert.equal(ended.stdout, 'lease over: "ai-new" kept as a tombstone\n');
    assert.ok(h.vm('ai-new')?.tags.includes('qmcp-tombstone'));
    assert.ok((await auditEntries(h)).some((e) => e.operation === 'lease.expire' && e.principal === 'dom0' && e.result === 'ok'));
    for (const bad of [['expire', '--now', 'tomorrow'], ['expire', '--now', '2030-01-01'], ['frobnicate'], ['list', 'extra']]) {
      assert.equal((await qmcp(['dom0', 'leases', ...bad, ...common])).status, 2, bad.join(' '));
    }
    UNUSABLE[1]?.write(h);
    const refused = await qmcp(['dom0', 'leases', 'expire', ...common, '--now', later]);
    assert.equal(refused.status, 1);
    assert.match(refused.stdout, /^nothing expired: /);
    assert.equal(await auditValid(h), true);
  }, LEASED, born);
});

test('lease: an invalid clock ends no lease; weakened, a veto without that check is caught', async () => {
  // NaN compares false both ways, so without the check an Invalid Date reads as "lease over"
  // (and a disposable's end, which needs no date, would remove it)
  const url = weakened('dom0/leases/expire.js', "return 'invalid clock';", ';');
  const { expireLeases: weak } = (await import(url)) as { expireLeases: Expire };
  await withNew(async (h) => {
    const r = await lapse(h, expireLeases, new Date(Number.NaN));
    assert.deepEqual(r, { expired: [], kept: [{ name: 'ai-new', reason: 'invalid clock' }] });
    assert.ok(h.vm('ai-new')?.tags.includes('ai-managed'));
    assert.equal(h.vm('ai-new')?.power, 'Running');
    // weakened, the reaper goes on to end it: halts it, then fails to date its marker
    const w = await weak(ops(h), new Date(Number.NaN));
    assert.match(w.kept[0]?.reason ?? '', /^ending failed/, 'weakened');
    assert.equal(h.vm('ai-new')?.power, 'Halted', 'weakened');
  });
});
