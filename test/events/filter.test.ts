/** EventFilter on its own: lookups that race the stream, names that recur, subjects that vanish, the agent's terms. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AdminEvent } from '../../src/shared/adminapi/wire.js';
import { EventFilter, parseNarrowing, type EventNarrowing, type QubeRecord, type WindowReads } from '../../src/dom0/services/events.js';
import type { ScopeRules } from '../../src/dom0/service/snapshot.js';
import { weakened } from '../plans/helpers.js';

const RULES: ScopeRules = {
  umbrella: 'ai-managed',
  sink: 'ai-dump',
  elevation: { exec: 'ai-exec', net: 'ai-net', full: 'ai-full' },
  mode: 'least-privilege',
  hiding: ['qmcp-incomplete', 'qmcp-tombstone'],
};

type Filter = typeof EventFilter;

const ev = (subject: string, event: string, kwargs: [string, string][] = []): AdminEvent => ({ subject, event, kwargs });
const add = (name: string): AdminEvent => ev('', 'domain-add', [['vm', name]]);
const del = (name: string): AdminEvent => ev('', 'domain-delete', [['vm', name]]);

function reads(lookups: (QubeRecord | null)[], props: Record<string, { type: string; text: string }> = {}): WindowReads {
  return {
    qube: () => Promise.resolve(lookups.shift() ?? null),
    property: (name, property) => Promise.resolve(props[`${name}.${property}`] ?? null),
  };
}

async function run(initial: QubeRecord[], lookups: (QubeRecord | null)[], events: AdminEvent[], Impl: Filter = EventFilter, narrowing: EventNarrowing = {}): Promise<string[]> {
  const f = new Impl(RULES, initial, reads(lookups), () => new Date(0), narrowing);
  for (const e of events) f.push(e);
  await f.drain();
  return f.rows.map((r) => `${r.subject} ${r.event} ${r.class}`);
}

test('a read that already sees a later state: the replayed tag events are absorbed, the creation told once', async () => {
  // the disposable was complete by the time dom0 read it
  const rows = await run([], [{ uuid: 'u1', name: 'ai-d', klass: 'DispVM', tags: ['ai-managed', 'ai-full'] }], [
    add('ai-d'),
    ev('ai-d', 'domain-tag-add:qmcp-incomplete'),
    ev('ai-d', 'domain-tag-delete:ai-full'),
    ev('ai-d', 'domain-tag-add:ai-full'),
    ev('ai-d', 'domain-tag-delete:qmcp-incomplete'),
    ev('ai-d', 'domain-unpaused'),
    ev('ai-d', 'domain-start'),
  ]);
  assert.deepEqual(rows, ['ai-d created DispVM', 'ai-d started DispVM']);
});

/** What a disposable's create does to its template and to the new qube, as birth.ts does it. */
const DISPOSABLE_CREATE: AdminEvent[] = [
  ev('ai-dvm', 'domain-tag-add:qmcp-incomplete'),
  ev('ai-dvm', 'domain-feature-set:prohibit-start'),
  add('ai-d'),
  ev('ai-d', 'domain-tag-add:qmcp-incomplete'),
  ev('ai-dvm', 'domain-feature-delete:prohibit-start'),
  ev('ai-dvm', 'domain-tag-delete:qmcp-incomplete'),
  ev('ai-d', 'domain-tag-delete:ai-full'),
  ev('ai-d', 'domain-tag-add:ai-full'),
  ev('ai-d', 'domain-tag-delete:qmcp-incomplete'),
];
const TEMPLATE: QubeRecord = { uuid: 'u-dvm', name: 'ai-dvm', klass: 'AppVM', tags: ['ai-managed', 'ai-full'] };
const BORN_HELD: QubeRecord = { uuid: 'u-d', name: 'ai-d', klass: 'DispVM', tags: ['ai-managed', 'ai-full', 'qmcp-incomplete'] };

test("a disposable's creation: its template's hold is not told, the disposable appears once when complete", async () => {
  assert.deepEqual(await run([TEMPLATE], [BORN_HELD], DISPOSABLE_CREATE), ['ai-d created DispVM']);
  // a window that opened while the template was held: the hold's end is not a creation either
  const held = { ...TEMPLATE, tags: ['ai-managed', 'ai-full', 'qmcp-incomplete'] };
  assert.deepEqual(await run([held], [BORN_HELD], DISPOSABLE_CREATE.slice(1)), ['ai-d created DispVM']);
  // weakened: every hiding tag hides, as for the other services; the template's churn shows
  const Weak = ((await import(weakened('dom0/services/events.js', '!(t === this.held && q.established)', 'true'))) as { EventFilter: Filter }).EventFilter;
  assert.deepEqual(await run([TEMPLATE], [BORN_HELD], DISPOSABLE_CREATE, Weak), ['ai-dvm removed AppVM', 'ai-dvm created AppVM', 'ai-d created DispVM']);
});

test('a qube that enters the umbrella still held, or loses it, is told by what it is at the end: a create that failed shows nothing', async () => {
  const rows = await run([], [{ uuid: 'u-n', name: 'ai-n', klass: 'AppVM', tags: ['qmcp-incomplete'] }], [
    add('ai-n'),
    ev('ai-n', 'domain-tag-add:ai-managed'),
    ev('ai-n', 'domain-tag-delete:ai-managed'),
    del('ai-n'),
  ]);
  assert.deepEqual(rows, []);
});

test('events after a domain-add wait for its read, so nothing about the new qube is judged on stale state', async () => {
  let release: (r: QubeRecord) => void = () => undefined;
  const slow: WindowReads = { qube: () => new Promise<QubeRecord>((r) => (release = r)), property: () => Promise.resolve(null) };
  const f = new EventFilter(RULES, [], slow, () => new Date(0));
  f.push(add('ai-n'));
  f.push(ev('ai-n', 'domain-start'));
  await new Promise((r) => setImmediate(r));
  assert.equal(f.rows.length, 0);
  release({ uuid: 'u9', name: 'ai-n', klass: 'AppVM', tags: ['ai-managed'] });
  await f.drain();
  assert.deepEqual(f.rows.map((r) => r.event), ['created', 'started']);
});

test('a name that recurs is a new subject: the old one is removed, the new one starts unseen', async () => {
  const rows = await run(
    [{ uuid: 'u-old', name: 'ai-x', klass: 'AppVM', tags: ['ai-managed'] }],
    [{ uuid: 'u-new', name: 'ai-x', klass: 'TemplateVM', tags: [] }],
    [ev('ai-x', 'domain-shutdown'), del('ai-x'), add('ai-x'), ev('ai-x', 'domain-start'), ev('ai-x', 'domain-tag-add:ai-managed'), ev('ai-x', 'domain-start')],
  );
  assert.deepEqual(rows, ['ai-x stopped AppVM', 'ai-x removed AppVM', 'ai-x created TemplateVM', 'ai-x started TemplateVM']);
});

test('vanished subjects: events for a deleted or unreadable name are dropped', async () => {
  const rows = await run(
    [{ uuid: 'u-a', name: 'ai-a', klass: 'AppVM', tags: ['ai-managed'] }],
    [null],
    [del('ai-a'), ev('ai-a', 'domain-start'), del('ai-a'), add('ai-gone'), ev('ai-gone', 'domain-start'), del('ai-gone'), del('never-known')],
  );
  assert.deepEqual(rows, ['ai-a removed AppVM']);
});

test('a qube tagged and untagged with the umbrella inside one window, and entombed: hiding tags count', async () => {
  const rows = await run(
    [{ uuid: 'u-o', name: 'outside', klass: 'AppVM', tags: [] }],
    [],
    [
      ev('outside', 'domain-tag-add:ai-managed'),
      ev('outside', 'property-set:label'),
      ev('outside', 'property-set:ip'),
      ev('outside', 'domain-tag-add:qmcp-tombstone'),
      ev('outside', 'domain-start'),
      ev('outside', 'domain-tag-delete:qmcp-tombstone'),
      ev('outside', 'domain-tag-delete:ai-managed'),
      ev('outside', 'domain-shutdown'),
    ],
  );
  assert.deepEqual(rows, [
    'outside created AppVM',
    'outside property-changed AppVM',
    'outside removed AppVM',
    'outside created AppVM',
    'outside removed AppVM',
  ]);
});

test('pause and unpause: a start unpauses on the way (Qubes fires it) but only a paused qube is told unpaused', async () => {
  const rows = await run(
    [
      { uuid: 'u-a', name: 'ai-a', klass: 'AppVM', tags: ['ai-managed'], state: 'Halted' },
      { uuid: 'u-p', name: 'ai-p', klass: 'AppVM', tags: ['ai-managed'], state: 'Paused' },
    ],
    [],
    [ev('ai-a', 'domain-unpaused'), ev('ai-a', 'domain-start'), ev('ai-a', 'domain-paused'), ev('ai-a', 'domain-unpaused'), ev('ai-p', 'domain-unpaused'), ev('ai-a', 'firewall-changed')],
  );
  assert.deepEqual(rows, ['ai-a started AppVM', 'ai-a paused AppVM', 'ai-a unpaused AppVM', 'ai-p unpaused AppVM', 'ai-a firewall-changed AppVM']);
  // weakened: every domain-unpaused told, so each start shows an unpause
  const Weak = ((await import(weakened('dom0/services/events.js', 'if (q.paused)', 'if (true)'))) as { EventFilter: Filter }).EventFilter;
  const weak = await run([{ uuid: 'u-a', name: 'ai-a', klass: 'AppVM', tags: ['ai-managed'] }], [], [ev('ai-a', 'domain-unpaused'), ev('ai-a', 'domain-start')], Weak);
  assert.deepEqual(weak, ['ai-a unpaused AppVM', 'ai-a started AppVM']);
});

test('a property change carries the value read now, a qube reference redacted by what the window knows', async () => {
  const initial: QubeRecord[] = [
    { uuid: 'u-a', name: 'ai-a', klass: 'AppVM', tags: ['ai-managed'] },
    { uuid: 'u-gw', name: 'ai-gw', klass: 'AppVM', tags: ['ai-managed'] },
    { uuid: 'u-v', name: 'vault', klass: 'AppVM', tags: [] },
  ];
  const props = {
    'ai-a.netvm': { type: 'vm', text: 'vault' },
    'ai-a.default_dispvm': { type: 'vm', text: 'ai-gw' },
    'ai-a.memory': { type: 'int', text: '800' },
    'ai-a.autostart': { type: 'bool', text: 'True' },
    'ai-a.template': { type: 'vm', text: '' },
  };
  const f = new EventFilter(RULES, initial, reads([], props), () => new Date(0));
  for (const p of ['netvm', 'default_dispvm', 'memory', 'autostart', 'template', 'ip']) f.push(ev('ai-a', `property-set:${p}`));
  f.push(ev('ai-a', 'property-reset:label'));
  await f.drain();
  assert.deepEqual(
    f.rows.map((r) => [r.property, r.value]),
    [
      ['netvm', '(outside)'],
      ['default_dispvm', 'ai-gw'],
      ['memory', 800],
      ['autostart', true],
      ['template', null],
      ['label', null],
    ],
  );
  for (const r of f.rows) assert.equal(r.event, 'property-changed');
});

test('narrowing: only the named qubes and event names, applied to rows already filtered', async () => {
  const initial: QubeRecord[] = [
    { uuid: 'u-a', name: 'ai-a', klass: 'AppVM', tags: ['ai-managed'] },
    { uuid: 'u-b', name: 'ai-b', klass: 'AppVM', tags: ['ai-managed'] },
    { uuid: 'u-v', name: 'vault', klass: 'AppVM', tags: [] },
  ];
  const events = [ev('ai-a', 'domain-start'), ev('ai-b', 'domain-start'), ev('vault', 'domain-start'), ev('ai-a', 'domain-shutdown'), ev('ai-b', 'domain-shutdown')];
  const narrowing = parseNarrowing(Buffer.from(JSON.stringify({ qubes: ['ai-a', 'vault'], events: ['stopped'] })));
  assert.ok(narrowing);
  assert.deepEqual(await run(initial, [], events, EventFilter, narrowing), ['ai-a stopped AppVM']);
  assert.deepEqual(await run(initial, [], events, EventFilter, { qubes: new Set(['vault']) }), []);
  // weakened: the narrowing ignored
  const Weak = ((await import(weakened('dom0/services/events.js', 'if (!this.wanted(event, q.name))', 'if (false)'))) as { EventFilter: Filter }).EventFilter;
  assert.equal((await run(initial, [], events, Weak, narrowing)).length, 4);
});

test('the narrowing payload: empty, or an object of non-empty lists of distinct valid names', () => {
  const parse = (v: unknown): unknown => parseNarrowing(Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)));
  assert.deepEqual(parse(''), {});
  assert.deepEqual(parse({ qubes: ['ai-a'] }), { qubes: new Set(['ai-a']) });
  assert.deepEqual(parse({ events: ['created', 'removed'] }), { events: new Set(['created', 'removed']) });
  for (const bad of [
    '{',
    'null',
    '[]',
    '{}',
    { qubes: [] },
    { qubes: ['ai-a', 'ai-a'] },
    { qubes: ['-bad'] },
    { qubes: ['dom0 '] },
    { qubes: 'ai-a' },
    { events: ['domain-start'] },
    { events: ['created', 'created'] },
    { events: [] },
    { qubes: ['ai-a'], other: 1 },
    { qubes: Array.from({ length: 33 }, (_, i) => `ai-${i}`) },
  ]) {
    assert.equal(parse(bad), null, JSON.stringify(bad));
  }
});

test("the agent's remove and its restore: removed once when entombed, created once when restored, none of the tag churn", async () => {
  const box: QubeRecord = { uuid: 'u-b', name: 'ai-b', klass: 'AppVM', tags: ['ai-managed', 'ai-exec'] };
  const events = [
    // entomb.ts: held, then the tombstone tags, then out of the umbrella, then the hold goes
    ev('ai-b', 'domain-tag-add:qmcp-incomplete'),
    ev('ai-b', 'domain-tag-add:qmcp-tombstone'),
    ev('ai-b', 'domain-tag-add:qmcp-tombstone-20261203T080000Z'),
    ev('ai-b', 'domain-tag-add:qmcp-owner-mcp-control'),
    ev('ai-b', 'domain-tag-delete:ai-exec'),
    ev('ai-b', 'domain-tag-delete:ai-managed'),
    ev('ai-b', 'domain-tag-delete:qmcp-incomplete'),
    // reinstate: the tier, the umbrella, the dated marker, and the hiding tag last
    ev('ai-b', 'domain-tag-add:ai-exec'),
    ev('ai-b', 'domain-tag-add:ai-managed'),
    ev('ai-b', 'domain-tag-delete:qmcp-tombstone-20261203T080000Z'),
    ev('ai-b', 'domain-tag-delete:qmcp-tombstone'),
    ev('ai-b', 'domain-start'),
  ];
  assert.deepEqual(await run([box], [], events), ['ai-b removed AppVM', 'ai-b created AppVM', 'ai-b started AppVM']);
  // weakened: only leaving the world is told, so a restored qube never comes back into the list
  const Weak = ((await import(weakened('dom0/services/events.js', "this.emit(after ? 'created' : 'removed', q, at)", "if (!after) this.emit('removed', q, at)"))) as { EventFilter: Filter }).EventFilter;
  assert.deepEqual(await run([box], [], events, Weak), ['ai-b removed AppVM', 'ai-b started AppVM']);
});
