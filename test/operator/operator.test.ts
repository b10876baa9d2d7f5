import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { auditLogPath } from '../../src/dom0/audit/index.js';
import { policyFilePath } from '../../src/dom0/operator/index.js';
import { settingsPath } from '../../src/shared/model/index.js';
import { qmcp } from './qmcp.js';
import type { Run } from './qmcp.js';
import { REFUSED, auditValid, call, startHost, testFleet } from '../services-write/helpers.js';
import type { Host } from '../services-write/helpers.js';

function tier(h: Host, ...args: string[]): Promise<Run> {
  return qmcp(['dom0', 'tier', ...args, '--root', h.root, '--qubesd-socket', h.sim.socketPath]);
}

async function withHost(fn: (h: Host) => Promise<void>): Promise<void> {
  const f = testFleet();
  f.qubes.push(
    { name: 'drop', klass: 'AppVM', template: 'debian', label: 'red', tags: ['ai-dump'] },
    { name: 'ai-twotags', klass: 'AppVM', template: 'ai-tpl', label: 'red', tags: ['ai-managed', 'ai-exec', 'ai-full'] },
  );
  const h = await startHost(undefined, f);
  try {
    await fn(h);
  } finally {
    await h.done();
  }
}

/** A qube's tags but the ones qubesd's GUI and audio extensions keep (guivm-dom0, audiovm-dom0). */
function tags(h: Host, q: string): string[] {
  return [...(h.vm(q)?.tags ?? [])].filter((t) => !/^(guivm|audiovm)-/.test(t)).sort();
}

test('dom0 tier: adds the umbrella, keeps exactly one elevation tag, audits an operator entry', async () => {
  await withHost(async (h) => {
    let r = await tier(h, 'vault', 'exec');
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(tags(h, 'vault'), ['ai-exec', 'ai-managed']);
    r = await tier(h, 'ai-twotags', 'net', '--json');
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { qube: 'ai-twotags', tier: 'net', added: ['ai-net'], removed: ['ai-exec', 'ai-full'] });
    assert.deepEqual(tags(h, 'ai-twotags'), ['ai-managed', 'ai-net']);
    r = await tier(h, 'ai-twotags', 'none');
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(tags(h, 'ai-twotags'), ['ai-managed']);
    r = await tier(h, 'ai-twotags', 'none');
    assert.match(r.stdout, /unchanged/);
    const log = readFileSync(auditLogPath(h.root), 'utf8');
    assert.match(log, /"operator"/);
    assert.match(log, /"tier"/);
    assert.equal(await auditValid(h), true);
    // the new tier is what the services see
    assert.deepEqual(await call(h, 'qmcp.SetProperty+vault', { name: 'memory', value: 512 }), REFUSED);
    assert.equal((await tier(h, 'vault', 'full')).status, 0);
    assert.equal((await call(h, 'qmcp.SetProperty+vault', { name: 'memory', value: 512 })).status, 0);
  });
});

test('dom0 tier: refuses a sink, dom0, an absent qube and a tombstone (exit 1); bad usage exits 2', async () => {
  await withHost(async (h) => {
    const sink = await tier(h, 'drop', 'full');
    assert.equal(sink.status, 1);
    assert.match(sink.stderr, /sink tag ai-dump/);
    assert.deepEqual(tags(h, 'drop'), ['ai-dump']);
    const dom0 = await tier(h, 'dom0', 'full');
    assert.equal(dom0.status, 1);
    assert.match(dom0.stderr, /dom0 is never tiered/);
    assert.equal((await tier(h, 'nosuch', 'exec')).status, 1);
    h.vm('vault')?.tags.push('qmcp-tombstone');
    const tomb = await tier(h, 'vault', 'exec');
    assert.equal(tomb.status, 1);
    assert.match(tomb.stderr, /tombstone/);
    assert.equal((await tier(h, 'vault', 'admin')).status, 2);
    assert.equal((await tier(h, 'vault')).status, 2);
    assert.equal((await qmcp(['dom0', 'tier', 'vault', 'exec', '--bogus'])).status, 2);
    const log = readFileSync(auditLogPath(h.root), 'utf8');
    assert.equal((log.match(/"failed"/g) ?? []).length, 4);
    assert.equal(await auditValid(h), true);
  });
});

test('dom0 mode: settings and policy switch together; an untiered qube follows the mode', async () => {
  await withHost(async (h) => {
    // ai-read carries only the umbrella: read in least-privilege, full in compat
    const set = { name: 'memory', value: 512 };
    assert.deepEqual(await call(h, 'qmcp.SetProperty+ai-read', set), REFUSED);
    let r = await qmcp(['dom0', 'mode', 'compat', '--root', h.root]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(readFileSync(settingsPath(h.root), 'utf8'), /"mode": "compat"/);
    assert.equal((await call(h, 'qmcp.SetProperty+ai-read', set)).status, 0);
    r = await qmcp(['dom0', 'mode', 'compat', '--root', h.root, '--json']);
    assert.deepEqual(JSON.parse(r.stdout), { mode: 'compat', previous: 'compat', changed: false });
    r = await qmcp(['dom0', 'mode', 'least-privilege', '--root', h.root]);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(await call(h, 'qmcp.SetProperty+ai-read', set), REFUSED);
    assert.equal((await call(h, 'qmcp.SetProperty+ai-box', set)).status, 0);
    assert.equal((await qmcp(['dom0', 'mode', 'permissive', '--root', h.root])).status, 2);
    assert.match(readFileSync(auditLogPath(h.root), 'utf8'), /"mode"/);
    assert.equal(await auditValid(h), true);
  });
});

test('a settings file switched without re-rendering the policy makes every call refuse', async () => {
  await withHost(async (h) => {
    assert.equal((await call(h, 'qmcp.List')).status, 0);
    const policyBefore = readFileSync(policyFilePath(h.root), 'utf8');
    const path = settingsPath(h.root);
    const raw = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
    writeFileSync(path, JSON.stringify({ ...raw, mode: 'compat' }, null, 2) + '\n');
    for (const [svc, payload] of [
      ['qmcp.List', ''],
      ['qmcp.Info+ai-box', ''],
      ['qmcp.DeviceList', ''],
      ['qmcp.SetProperty+ai-box', { name: 'memory', value: 512 }],
      ['qmcp.SetProperty+ai-read', { name: 'memory', value: 512 }],
    ] as const) {
      assert.deepEqual(await call(h, svc, payload), REFUSED, svc);
    }
    assert.equal(readFileSync(policyFilePath(h.root), 'utf8'), policyBefore);
    // the mode command re-renders the pair and calls work again
    assert.equal((await qmcp(['dom0', 'mode', 'compat', '--root', h.root])).status, 0);
    assert.equal((await call(h, 'qmcp.List')).status, 0);
    assert.notEqual(readFileSync(policyFilePath(h.root), 'utf8'), policyBefore);
  });
});
