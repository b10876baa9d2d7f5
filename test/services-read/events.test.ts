import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AdminEvent } from '../../src/shared/adminapi/wire.js';
import { EventFilter } from '../../src/dom0/services/events.js';
import type { ScopeRules } from '../../src/dom0/service/snapshot.js';
import { eventWindow, WINDOW_SECONDS } from './event-window.js';

const RULES: ScopeRules = {
  umbrella: 'ai-managed',
  sink: 'ai-dump',
  elevation: { exec: 'ai-exec', net: 'ai-net', full: 'ai-full' },
  mode: 'least-privilege',
  hiding: ['qmcp-incomplete'],
};

const ev = (subject: string, event: string, kwargs: [string, string][] = []): AdminEvent => ({ subject, event, kwargs });

async function filterOver(events: AdminEvent[]): Promise<{ event: string; subject: string; class: string | null }[]> {
  const qubes = [
    { uuid: 'u-a', name: 'ai-a', tags: ['ai-managed'], klass: 'AppVM' },
    { uuid: 'u-vault', name: 'vault', tags: [], klass: 'AppVM' },
    { uuid: 'u-drop', name: 'drop', tags: ['ai-dump'], klass: 'AppVM' },
    { uuid: 'u-dom0', name: 'dom0', tags: [], klass: 'AdminVM' },
  ];
  let n = 0;
  const f = new EventFilter(
    RULES,
    qubes,
    { qube: (name) => Promise.resolve({ uuid: `new-${++n}`, name, klass: 'AppVM', tags: [] }), property: () => Promise.resolve({ type: 'str', text: 'x' }) },
    () => new Date(0),
  );
  for (const e of events) f.push(e);
  await f.drain();
  return f.rows.map(({ event, subject, class: c }) => ({ event, subject, class: c }));
}

test('only events about visible qubes, allowlisted names, no tier tags, no pre-events', async () => {
  const rows = await filterOver([
    ev('', 'connection-established'),
    ev('ai-a', 'domain-pre-start'),
    ev('ai-a', 'domain-start', [['start_guid', 'x']]),
    ev('vault', 'domain-start'),
    ev('dom0', 'domain-start'),
    ev('ai-a', 'property-set:label', [['newvalue', 'red']]),
    ev('ai-a', 'property-set:netvm', [['newvalue', 'vault']]),
    ev('ai-a', 'property-set:ip', [['newvalue', '10.0.0.1']]),
    ev('ai-a', 'property-reset:xid'),
    ev('ai-a', 'domain-tag-add:ai-full', [['tag', 'ai-full']]),
    ev('ai-a', 'domain-tag-delete:ai-full', [['tag', 'ai-full']]),
    ev('vault', 'domain-tag-add:secret'),
    ev('drop', 'domain-tag-add:ai-managed'),
    ev('', 'property-set:default_netvm'),
    ev('ai-a', 'domain-feature-set:internal'),
  ]);
  assert.deepEqual(rows, [
    { event: 'started', subject: 'ai-a', class: 'AppVM' },
    { event: 'property-changed', subject: 'ai-a', class: 'AppVM' },
    { event: 'property-changed', subject: 'ai-a', class: 'AppVM' },
  ]);
});

test('the visible set follows the umbrella tag within a window, and names recur', async () => {
  const rows = await filterOver([
    ev('', 'domain-add', [['vm', 'ai-new']]),
    ev('ai-new', 'domain-tag-add:created-by-dom0'),
    ev('ai-new', 'domain-tag-add:qmcp-incomplete'),
    ev('ai-new', 'domain-tag-add:ai-managed'),
    ev('ai-new', 'domain-start'),
    ev('ai-new', 'domain-tag-delete:qmcp-incomplete'),
    ev('ai-new', 'domain-start'),
    ev('ai-new', 'domain-tag-delete:ai-managed'),
    ev('ai-new', 'domain-shutdown'),
    ev('', 'domain-delete', [['vm', 'ai-new']]),
    ev('', 'domain-add', [['vm', 'ai-new']]),
    ev('ai-new', 'domain-start'),
    ev('vault', 'domain-tag-add:ai-managed'),
    ev('vault', 'domain-shutdown'),
    ev('vault', 'domain-tag-delete:ai-managed'),
    ev('', 'domain-delete', [['vm', 'ai-a']]),
  ]);
  assert.deepEqual(
    rows.map((r) => `${r.subject} ${r.event}`),
    [
      'ai-new created',
      'ai-new started',
      'ai-new removed',
      'vault created',
      'vault stopped',
      'vault removed',
      'ai-a removed',
    ],
  );
});

test('qmcp.Events through the router: a bounded window of what the principal may see', async () => {
  const { world: w, reply: r, rows, truncated } = await eventWindow({ mode: 'least-privilege' }, async ({ qubesd: { app } }) => {
    await app.start(app.mustGet('vault'));
    await app.start(app.mustGet('ai-runner'));
    app.addTag(app.mustGet('ai-viewer'), 'ai-full');
    app.removeTag(app.mustGet('ai-viewer'), 'ai-full');
  });
  try {
    assert.deepEqual(
      rows.map((e) => [e.subject, e.event, e.class]),
      [
        ['ai-runner', 'started', 'AppVM'],
      ],
    );
    assert.equal(truncated, false);
    assert.ok(!r.stdout.toString().includes('sys-firewall') && !r.stdout.toString().includes('vault'));
    for (const bad of ['qmcp.Events', 'qmcp.Events+0', 'qmcp.Events+61', 'qmcp.Events+1.5']) {
      const x = await w.call(bad);
      assert.deepEqual([x.status, x.stdout.length, x.stderr.toString()], [126, 0, 'Request refused\n'], bad);
    }
  } finally {
    await w.close();
  }
});

test('a window that closed before the acts were done is not compared: the acts run again in a longer one', async () => {
  // the first window only has to close, so it is the shortest the service takes; then the usual lengths
  const lengths = [1, ...WINDOW_SECONDS];
  let tries = 0;
  const { world, rows, seconds } = await eventWindow(
    { mode: 'least-privilege' },
    async ({ qubesd: { app } }, closed) => {
      // the first time, dom0 acts only once the window has closed (a machine too slow for it)
      if (++tries === 1) await closed;
      await app.start(app.mustGet('ai-runner'));
    },
    lengths,
  );
  try {
    assert.ok(tries >= 2, 'the window the acts came after was compared');
    assert.equal(seconds, lengths[tries - 1]);
    assert.deepEqual(rows.map((e) => `${e.subject} ${e.event}`), ['ai-runner started']);
  } finally {
    await world.close();
  }
});
