/**
 * One qmcp.Events window through the router while dom0 changes the host:
 * names that recur, qubes entering and leaving the umbrella, outside qubes,
 * tier tags and qubes that vanish before they can be read.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { eventWindow } from '../services-read/event-window.js';
import type { EventRow } from '../services-read/event-window.js';
import type { World } from '../services-read/helpers.js';

let world: World;
let rows: EventRow[];
let raw: string;

/** A qube's coming into view is told as domain-add or as the umbrella tag's add, depending on when dom0 reads it. */
const seen = (r: EventRow): string => `${r.subject} ${r.event === 'domain-add' ? 'appears' : r.event === 'domain-tag-add:ai-managed' ? 'appears' : r.event} ${r.class}`;

before(async () => {
  const window = await eventWindow({ mode: 'least-privilege' }, async (w) => {
    const app = w.qubesd.app;
    const get = (n: string) => {
      const vm = app.get(n);
      assert.ok(vm, n);
      return vm;
    };
    // a named umbrella qube removed and re-created under the same name, as another class
    await app.remove(get('ai-viewer'));
    const again = app.addVm({ name: 'ai-viewer', klass: 'StandaloneVM', label: 'red' });
    app.addTag(again, 'ai-managed');
    await app.start(again);
    // the umbrella added then removed inside the window
    const flash = app.addVm({ name: 'ai-flash', klass: 'AppVM', label: 'red', template: 'tpl' });
    app.addTag(flash, 'ai-managed');
    app.removeTag(flash, 'ai-managed');
    // outside qubes, whatever happens to them
    await app.start(get('vault'));
    app.addTag(get('vault'), 'secret');
    app.setProp(get('vault'), 'label', 'red');
    const outside = app.addVm({ name: 'work', klass: 'AppVM', label: 'blue', template: 'tpl' });
    await app.start(outside);
    // tier tags on a visible qube
    app.addTag(get('ai-runner'), 'ai-full');
    app.removeTag(get('ai-runner'), 'ai-exec');
    // a disposable takes its template's tags (umbrella and tier) without tag events
    app.createDispVM('ai-d1', 'red', get('ai-dvm'));
    // qubes gone before dom0 can read them: one never in the umbrella, one briefly in it
    await app.remove(app.addVm({ name: 'ai-ghost', klass: 'AppVM', label: 'red', template: 'tpl' }));
    const blip = app.addVm({ name: 'ai-blip', klass: 'AppVM', label: 'red', template: 'tpl' });
    app.addTag(blip, 'ai-managed');
    await app.remove(blip);
  });
  world = window.world;
  raw = window.reply.stdout.toString('utf8');
  rows = window.rows;
});

after(async () => {
  await world.close();
});

test('a name removed and re-created in one window is two subjects', () => {
  const viewer = rows.filter((r) => r.subject === 'ai-viewer').map(seen);
  assert.deepEqual(viewer, ['ai-viewer domain-delete AppVM', 'ai-viewer appears StandaloneVM', 'ai-viewer domain-unpaused StandaloneVM', 'ai-viewer domain-start StandaloneVM']);
});

test('the umbrella added then removed inside one window shows both', () => {
  assert.deepEqual(
    rows.filter((r) => r.subject === 'ai-flash').map((r) => `${r.event} ${r.class}`),
    ['domain-tag-add:ai-managed AppVM', 'domain-tag-delete:ai-managed AppVM'],
  );
});

test("an outside qube's events are never shown", () => {
  for (const name of ['vault', 'work', 'sys-firewall', 'secret']) assert.ok(!raw.includes(name), name);
});

test('tier tags never appear, not even as an event-name suffix', () => {
  for (const tag of ['ai-full', 'ai-exec', 'ai-net']) assert.ok(!raw.includes(tag), tag);
  assert.deepEqual(rows.filter((r) => r.subject === 'ai-runner'), []);
});

test('a disposable born inside the umbrella is shown appearing', () => {
  assert.deepEqual(rows.filter((r) => r.subject === 'ai-d1').map(seen), ['ai-d1 appears DispVM']);
});

test('qubes that vanished before they could be read: only the umbrella one is told, class unknown', () => {
  assert.deepEqual(rows.filter((r) => r.subject === 'ai-ghost'), []);
  assert.deepEqual(rows.filter((r) => r.subject === 'ai-blip').map(seen), ['ai-blip appears null', 'ai-blip domain-delete null']);
  // every row is one of the allowlisted shapes, in time order
  for (const r of rows) assert.match(r.event, /^(domain-[a-z-]+|property-(set|reset):[a-z_]+|domain-tag-(add|delete):ai-managed)$/);
  assert.deepEqual([...rows].sort((a, b) => a.time.localeCompare(b.time)), rows);
});

test('the simulator fires domain-add after a disposable has its template tags, and domain-delete after it is gone, as qubesd does (its GUI and audio qube tags included)', async () => {
  const app = world.qubesd.app;
  const seenAt: string[] = [];
  const off = app.subscribe((ev) => {
    const name = ev.kwargs.find(([k]) => k === 'vm')?.[1] ?? '';
    if (ev.event === 'domain-add' || ev.event === 'domain-pre-delete' || ev.event === 'domain-delete') {
      seenAt.push(`${ev.event} ${name} exists=${app.get(name) !== undefined} tags=${[...(app.get(name)?.tags ?? [])].sort().join(',')}`);
    }
  });
  try {
    const d = app.createDispVM('ai-d2', 'red', app.mustGet('ai-dvm'));
    await app.remove(d);
  } finally {
    off();
  }
  assert.deepEqual(seenAt, [
    'domain-add ai-d2 exists=true tags=ai-full,ai-managed,audiovm-ai-gw,guivm-ai-gw',
    'domain-pre-delete ai-d2 exists=true tags=ai-full,ai-managed,audiovm-ai-gw,guivm-ai-gw',
    'domain-delete ai-d2 exists=false tags=',
  ]);
});
