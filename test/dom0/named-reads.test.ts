/**
 * Reads that cost what they need: a one-qube call reads from qubesd only
 * the qubes it names and those its answer refers to, however many qubes
 * the machine has; a qube that does not exist costs qubesd the same calls
 * as one outside the umbrella; a named snapshot answers exactly as a whole
 * one for every qube it read, and refuses to answer for one it did not.
 * Each check has the weakened variant it catches beside it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Qubesd } from '../../src/dom0/qubesd.js';
import { loadDom0Config } from '../../src/dom0/service/config.js';
import type { runService } from '../../src/dom0/service/run.js';
import { Snapshot, UnreadQube } from '../../src/dom0/service/snapshot.js';
import type { ScopeRules } from '../../src/dom0/service/snapshot.js';
import { startProxy } from '../../verify/faults/proxy.js';
import type { QubesdProxy } from '../../verify/faults/proxy.js';
import { weakenedFile } from '../../verify/weakened-module.js';
import { BASE_SETTINGS, call, json, startHost, testFleet } from '../services-write/helpers.js';
import type { Host } from '../services-write/helpers.js';

type SnapshotClass = typeof Snapshot;

/** Outside qubes added to the test fleet, so that reading the machine would show. */
const OUTSIDE_QUBES = 40;

async function hostWithOutside(): Promise<{ h: Host; proxy: QubesdProxy; viaProxy: Qubesd }> {
  const fleet = testFleet();
  for (let i = 0; i < OUTSIDE_QUBES; i++) fleet.qubes.push({ name: `op-${i}`, klass: 'AppVM', template: 'debian', label: 'gray' });
  const h = await startHost({ ...BASE_SETTINGS, birthCeiling: 'full' }, fleet);
  const proxy = await startProxy(h.sim.socketPath, join(h.root, 'proxy.sock'));
  return { h, proxy, viaProxy: new Qubesd(proxy.socketPath) };
}

function rulesOf(h: Host): ScopeRules {
  const config = loadDom0Config(h.root, () => undefined);
  if (!config) throw new Error('the host has no usable settings');
  return config.service.scope;
}

/** The one-qube calls, each with the qubes it may read: its targets and what its answer names. */
const ONE_QUBE_CALLS: readonly (readonly [string, unknown, readonly string[]])[] = [
  // ai-box's readable properties name its template, netvm and default disposable template; guivm and audiovm are dom0
  ['qmcp.Info+ai-box', '', ['ai-box', 'ai-tpl', 'ai-egress', 'ai-dvm', 'dom0']],
  ['qmcp.Info+vault', '', ['vault']],
  ['qmcp.Info+ai-nowhere', '', ['ai-nowhere']],
  ['qmcp.SetProperty+ai-box', { name: 'default_dispvm', value: 'ai-dvm' }, ['ai-box', 'ai-dvm']],
  ['qmcp.SetFeature+ai-box', { name: 'gui', value: '1' }, ['ai-box']],
  ['qmcp.FirewallSet+ai-outside', 'action=accept\n', ['ai-outside']],
  ['qmcp.Shutdown+ai-nowhere', '', ['ai-nowhere']],
];

/** The qubes the calls since `from` read: each call's destination, or every qube for the system info. */
function readQubes(proxy: QubesdProxy, from: number): Set<string> {
  return new Set(proxy.calls.slice(from).map((c) => (c.method === 'internal.GetSystemInfo' ? '(every qube)' : c.dest)));
}

async function oneQubeReads(h: Host, proxy: QubesdProxy, viaProxy: Qubesd, runner?: typeof runService): Promise<string[]> {
  const wrong: string[] = [];
  for (const [full, payload, may] of ONE_QUBE_CALLS) {
    const from = proxy.calls.length;
    await call(h, full, payload, { qubesd: viaProxy, ...(runner ? { runService: runner } : {}) });
    const extra = [...readQubes(proxy, from)].filter((q) => !may.includes(q));
    if (extra.length > 0) wrong.push(`${full} read ${extra.length} qube(s) it does not name, ${extra.slice(0, 3).join(', ')}...`);
  }
  return wrong;
}

test('a one-qube call reads only the qubes it names and those its answer refers to', async () => {
  const { h, proxy, viaProxy } = await hostWithOutside();
  try {
    assert.deepEqual(await oneQubeReads(h, proxy, viaProxy), []);
    // and still answers what it answered on a whole read: the references redacted or shown
    const info = json(await call(h, 'qmcp.Info+ai-box', '', { qubesd: viaProxy }));
    assert.equal(info['template'], 'ai-tpl');
    assert.equal(info['netvm'], 'ai-egress');
    assert.equal(info['guivm'], '(outside)');
    // a listing reads every qube, in one call
    const from = proxy.calls.length;
    await call(h, 'qmcp.List', '', { qubesd: viaProxy });
    assert.deepEqual(proxy.calls.slice(from).filter((c) => c.method !== 'admin.vm.property.GetAll').map((c) => c.method), ['internal.GetSystemInfo']);
  } finally {
    await proxy.close();
    await h.done();
  }
});

test('the weakened runner that reads the whole machine for every call is caught', async () => {
  const { h, proxy, viaProxy } = await hostWithOutside();
  try {
    const path = weakenedFile('dom0/service/run', "spec.reads === 'named'", 'false');
    const weak = ((await import(path)) as { runService: typeof runService }).runService;
    const wrong = await oneQubeReads(h, proxy, viaProxy, weak);
    assert.equal(wrong.length, ONE_QUBE_CALLS.length, wrong.join('\n'));
  } finally {
    await proxy.close();
    await h.done();
  }
});

/** The Admin API methods a named snapshot of `name` makes, sorted. */
async function methodsFor(S: SnapshotClass, h: Host, proxy: QubesdProxy, viaProxy: Qubesd, name: string): Promise<string[]> {
  const from = proxy.calls.length;
  await S.take(viaProxy, rulesOf(h), [name]);
  return proxy.calls.slice(from).map((c) => c.method).sort();
}

async function absentCostsAsOutside(S: SnapshotClass, h: Host, proxy: QubesdProxy, viaProxy: Qubesd): Promise<string[]> {
  const differ: string[] = [];
  const absent = await methodsFor(S, h, proxy, viaProxy, 'ai-nowhere');
  for (const outside of ['vault', 'ai-outside', 'op-0']) {
    const seen = await methodsFor(S, h, proxy, viaProxy, outside);
    if (seen.join() !== absent.join()) differ.push(`${outside}: ${seen.join(' ')}; absent: ${absent.join(' ')}`);
  }
  return differ;
}

test('a qube that does not exist costs qubesd the same calls as one outside the umbrella', async () => {
  const { h, proxy, viaProxy } = await hostWithOutside();
  try {
    assert.deepEqual(await absentCostsAsOutside(Snapshot, h, proxy, viaProxy), []);
    assert.deepEqual(await methodsFor(Snapshot, h, proxy, viaProxy, 'ai-nowhere'), ['admin.vm.List', 'admin.vm.tag.List']);
  } finally {
    await proxy.close();
    await h.done();
  }
});

test('the weakened read that skips the tags of a qube qubesd did not list is caught', async () => {
  const { h, proxy, viaProxy } = await hostWithOutside();
  try {
    const path = weakenedFile(
      'dom0/service/snapshot',
      "await Promise.allSettled([qubesd.reply('admin.vm.List', name), qubesd.reply('admin.vm.tag.List', name)])",
      "await qubesd.reply('admin.vm.List', name).then(async (l) => [{ status: 'fulfilled', value: l }, { status: 'fulfilled', value: l.ok ? await qubesd.reply('admin.vm.tag.List', name) : l }])",
    );
    const weak = ((await import(path)) as { Snapshot: SnapshotClass }).Snapshot;
    const differ = await absentCostsAsOutside(weak, h, proxy, viaProxy);
    assert.equal(differ.length, 3, differ.join('\n'));
  } finally {
    await proxy.close();
    await h.done();
  }
});

/** Where a named snapshot of each qube (and of an absent one) answers differently from the whole one. */
async function namedAsWhole(S: SnapshotClass, h: Host): Promise<string[]> {
  const rules = rulesOf(h);
  const whole = await S.take(h.qubesd, rules);
  const names = [...whole.allQubes().map((q) => q.name), 'ai-nowhere'];
  const differ: string[] = [];
  const facts = (s: Snapshot, n: string): string => {
    const q = s.visible(n);
    return JSON.stringify({ visible: q !== undefined, tier: q ? s.tier(q) : null, sink: s.sink(n) !== undefined, any: s.any(n)?.klass ?? null });
  };
  for (const n of names) {
    const named = await S.take(h.qubesd, rules, [n]);
    if (facts(named, n) !== facts(whole, n)) differ.push(`${n}: named ${facts(named, n)}, whole ${facts(whole, n)}`);
  }
  return differ;
}

test('a named snapshot answers as the whole one for every qube it read, and refuses one it did not', async () => {
  const h = await startHost();
  try {
    assert.deepEqual(await namedAsWhole(Snapshot, h), []);
    const named = await Snapshot.take(h.qubesd, rulesOf(h), ['ai-box']);
    assert.throws(() => named.visible('vault'), UnreadQube);
    assert.throws(() => named.any('vault'), UnreadQube);
    assert.throws(() => named.allVisible(), UnreadQube);
    await named.include(h.qubesd, ['vault']);
    assert.equal(named.visible('vault'), undefined);
  } finally {
    await h.done();
  }
});

test('the weakened named read that drops the tags, and the one that answers for qubes it did not read, are caught', async () => {
  const h = await startHost();
  try {
    const noTags = weakenedFile('dom0/service/snapshot', 'tags: new Set(parseTags(t.text))', 'tags: new Set()');
    const differ = await namedAsWhole(((await import(noTags)) as { Snapshot: SnapshotClass }).Snapshot, h);
    assert.ok(differ.some((d) => d.startsWith('ai-box:')), differ.join('\n'));
    const unguarded = weakenedFile('dom0/service/snapshot', 'throw new UnreadQube(name);', ';');
    const S = ((await import(unguarded)) as { Snapshot: SnapshotClass }).Snapshot;
    const named = await S.take(h.qubesd, rulesOf(h), ['ai-box']);
    assert.doesNotThrow(() => named.visible('vault'), 'the weakened snapshot answers for a qube it never read');
  } finally {
    await h.done();
  }
});
