/** EventFilter on its own: lookups that race the stream, names that recur, subjects that vanish. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AdminEvent } from '../../src/shared/adminapi/wire.js';
import { EventFilter, type QubeRecord } from '../../src/dom0/services/events.js';
import type { ScopeRules } from '../../src/dom0/service/snapshot.js';

const RULES: ScopeRules = {
  umbrella: 'ai-managed',
  sink: 'ai-dump',
  elevation: { exec: 'ai-exec', net: 'ai-net', full: 'ai-full' },
  mode: 'least-privilege',
  hiding: ['qmcp-incomplete'],
};

const ev = (subject: string, event: string, kwargs: [string, string][] = []): AdminEvent => ({ subject, event, kwargs });
const add = (name: string): AdminEvent => ev('', 'domain-add', [['vm', name]]);
const del = (name: string): AdminEvent => ev('', 'domain-delete', [['vm', name]]);

async function run(initial: QubeRecord[], lookups: (QubeRecord | null)[], events: AdminEvent[]): Promise<string[]> {
  const f = new EventFilter(RULES, initial, () => Promise.resolve(lookups.shift() ?? null), () => new Date(0));
  for (const e of events) f.push(e);
  await f.drain();
  return f.rows.map((r) => `${r.subject} ${r.event} ${r.class}`);
}

test('a read that already sees a later state: the replayed tag events are absorbed, the appearance told once', async () => {
  // the disposable was complete by the time dom0 read it
  const rows = await run([], [{ uuid: 'u1', name: 'ai-d', klass: 'DispVM', tags: ['ai-managed', 'ai-full'] }], [
    add('ai-d'),
    ev('ai-d', 'domain-tag-add:qmcp-incomplete'),
    ev('ai-d', 'domain-tag-delete:ai-full'),
    ev('ai-d', 'domain-tag-add:ai-full'),
    ev('ai-d', 'domain-tag-delete:qmcp-incomplete'),
    ev('ai-d', 'domain-start'),
  ]);
  assert.deepEqual(rows, [
    'ai-d domain-add DispVM',
    'ai-d domain-tag-delete:ai-managed DispVM',
    'ai-d domain-tag-add:ai-managed DispVM',
    'ai-d domain-start DispVM',
  ]);
});

test('events after a domain-add wait for its read, so nothing about the new qube is judged on stale state', async () => {
  let release: (r: QubeRecord) => void = () => undefined;
  const f = new EventFilter(RULES, [], () => new Promise<QubeRecord>((r) => (release = r)), () => new Date(0));
  f.push(add('ai-n'));
  f.push(ev('ai-n', 'domain-start'));
  await new Promise((r) => setImmediate(r));
  assert.equal(f.rows.length, 0);
  release({ uuid: 'u9', name: 'ai-n', klass: 'AppVM', tags: ['ai-managed'] });
  await f.drain();
  assert.deepEqual(f.rows.map((r) => r.event), ['domain-add', 'domain-start']);
});

test('a name that recurs is a new subject: the old one is deleted, the new one starts unseen', async () => {
  const rows = await run(
    [{ uuid: 'u-old', name: 'ai-x', klass: 'AppVM', tags: ['ai-managed'] }],
    [{ uuid: 'u-new', name: 'ai-x', klass: 'TemplateVM', tags: [] }],
    [ev('ai-x', 'domain-shutdown'), del('ai-x'), add('ai-x'), ev('ai-x', 'domain-start'), ev('ai-x', 'domain-tag-add:ai-managed'), ev('ai-x', 'domain-start')],
  );
  assert.deepEqual(rows, ['ai-x domain-shutdown AppVM', 'ai-x domain-delete AppVM', 'ai-x domain-tag-add:ai-managed TemplateVM', 'ai-x domain-start TemplateVM']);
});

test('vanished subjects: events for a deleted or unreadable name are dropped', async () => {
  const rows = await run(
    [{ uuid: 'u-a', name: 'ai-a', klass: 'AppVM', tags: ['ai-managed'] }],
    [null],
    [del('ai-a'), ev('ai-a', 'domain-start'), del('ai-a'), add('ai-gone'), ev('ai-gone', 'domain-start'), del('ai-gone'), del('never-known')],
  );
  assert.deepEqual(rows, ['ai-a domain-delete AppVM']);
});

test('a qube tagged and untagged with the umbrella inside one window, and entombed: hiding tags count', async () => {
  const rows = await run(
    [{ uuid: 'u-o', name: 'outside', klass: 'AppVM', tags: [] }],
    [],
    [
      ev('outside', 'domain-tag-add:ai-managed'),
      ev('outside', 'property-set:label'),
      ev('outside', 'property-set:ip'),
      ev('outside', 'domain-tag-add:qmcp-incomplete'),
      ev('outside', 'domain-start'),
      ev('outside', 'domain-tag-delete:qmcp-incomplete'),
      ev('outside', 'domain-tag-delete:ai-managed'),
      ev('outside', 'domain-shutdown'),
    ],
  );
  assert.deepEqual(rows, [
    'outside domain-tag-add:ai-managed AppVM',
    'outside property-set:label AppVM',
    'outside domain-tag-delete:ai-managed AppVM',
    'outside domain-tag-add:ai-managed AppVM',
    'outside domain-tag-delete:ai-managed AppVM',
  ]);
});
