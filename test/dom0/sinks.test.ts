/**
 * The sinks qmcp.List names are exactly those a push reaches under the
 * policy: tagged as a sink, not in the umbrella (a hybrid is seen as
 * neither), not held incomplete or a tombstone (their deny lines come
 * first), never dom0 (whose tags the snapshot never reads). Each weakened
 * snapshot below drops one of these and is caught by the same check.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Qubesd } from '../../src/dom0/qubesd.js';
import { Snapshot } from '../../src/dom0/service/snapshot.js';
import type { ScopeRules } from '../../src/dom0/service/snapshot.js';
import { listService } from '../../src/dom0/services/list.js';
import { weakenedFile } from '../../verify/weakened-module.js';

const fleet: Record<string, { klass: string; tags: string[] }> = {
  dom0: { klass: 'AdminVM', tags: ['ai-dump'] },
  'ai-box': { klass: 'AppVM', tags: ['ai-managed', 'ai-exec'] },
  drop: { klass: 'AppVM', tags: ['ai-dump'] },
  'drop-b': { klass: 'StandaloneVM', tags: ['ai-dump', 'backup'] },
  hybrid: { klass: 'AppVM', tags: ['ai-managed', 'ai-dump', 'ai-full'] },
  'drop-half': { klass: 'AppVM', tags: ['ai-dump', 'qmcp-incomplete'] },
  'drop-gone': { klass: 'AppVM', tags: ['ai-dump', 'qmcp-tombstone'] },
  vault: { klass: 'AppVM', tags: ['backup'] },
};

const qubesd = {
  async list() {
    return new Map(Object.entries(fleet).map(([n, q]) => [n, { klass: q.klass, state: 'Halted' }]));
  },
  async tags(name: string) {
    return fleet[name]?.tags ?? [];
  },
  // a whole-machine snapshot's one read
  async systemInfo() {
    return new Map(Object.entries(fleet).map(([n, q]) => [n, { klass: q.klass, state: 'Halted', tags: q.tags }]));
  },
  async call() {
    return 'label default=True type=label red\n';
  },
} as unknown as Qubesd;

const RULES: ScopeRules = {
  umbrella: 'ai-managed',
  sink: 'ai-dump',
  elevation: { exec: 'ai-exec', net: 'ai-net', full: 'ai-full' },
  mode: 'least-privilege',
  hiding: ['qmcp-incomplete', 'qmcp-tombstone'],
};

type SnapshotClass = typeof Snapshot;

async function sinksOf(snapshotClass: SnapshotClass): Promise<string[]> {
  return (await snapshotClass.take(qubesd, RULES)).allSinks().map((q) => q.name);
}

const EXPECTED = ['drop', 'drop-b'];

test('the sinks are those a push reaches, in name order', async () => {
  assert.deepEqual(await sinksOf(Snapshot), EXPECTED);
  const snapshot = await Snapshot.take(qubesd, RULES);
  assert.equal(snapshot.sink('hybrid'), undefined);
  assert.equal(snapshot.sink('drop-gone'), undefined);
});

test('qmcp.List names them beside the visible qubes, and nothing else of them', async () => {
  const snapshot = await Snapshot.take(qubesd, RULES);
  const out = (await listService.handle({ qubesd, snapshot } as never)) as { qubes: { name: string }[]; sinks: string[] };
  assert.deepEqual(out.sinks, EXPECTED);
  assert.deepEqual(
    out.qubes.map((q) => q.name),
    ['ai-box'],
  );
});

test('each weakened sink test is caught', async () => {
  const guard = 'return q.tags.has(sink) && !q.tags.has(umbrella) && !hiding.some((t) => q.tags.has(t)) ? q : undefined;';
  const weakened: Record<string, [string, string]> = {
    'a hybrid counts as a sink': [guard, 'return q.tags.has(sink) && !hiding.some((t) => q.tags.has(t)) ? q : undefined;'],
    'an incomplete or tombstone sink counts': [guard, 'return q.tags.has(sink) && !q.tags.has(umbrella) ? q : undefined;'],
  };
  for (const [what, [from, to]] of Object.entries(weakened)) {
    const mod = (await import(weakenedFile('dom0/service/snapshot', from, to))) as { Snapshot: SnapshotClass };
    assert.notDeepEqual(await sinksOf(mod.Snapshot), EXPECTED, what);
  }
});
