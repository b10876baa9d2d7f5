import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AdminEvent } from '../../src/shared/adminapi/wire.js';
import { EventFilter } from '../../src/dom0/services/events.js';
import type { ScopeRules } from '../../src/dom0/service/snapshot.js';
import { json, startWorld } from './helpers.js';

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
  const f = new EventFilter(RULES, qubes, (name) => Promise.resolve({ uuid: `new-${++n}`, name, klass: 'AppVM', tags: [] }), () => new Date(0));
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
    { event: 'domain-start', subject: 'ai-a', class: 'AppVM' },
    { event: 'property-set:label', subject: 'ai-a', class: 'AppVM' },
    { event: 'property-set:netvm', subject: 'ai-a', class: 'AppVM' },
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
      'ai-new domain-tag-add:ai-managed',
      'ai-new domain-start',
      'ai-new domain-tag-delete:ai-managed',
      'vault domain-tag-add:ai-managed',
      'vault domain-shutdown',
      'vault domain-tag-delete:ai-managed',
      'ai-a domain-delete',
    ],
  );
});

test('qmcp.Events through the router: a bounded window of what the principal may see', async () => {
  const w = await startWorld({ mode: 'least-privilege' });
  try {
    const app = w.qubesd.app;
    const listeners = (app as unknown as { listeners: Set<unknown> }).listeners;
    const before = listeners.size;
    const pending = w.call('qmcp.Events+3');
    // wait for the service to subscribe, then act as dom0
    while (listeners.size === before) await new Promise((r) => setTimeout(r, 20));
    const runner = app.get('ai-runner');
    const vault = app.get('vault');
    const viewer = app.get('ai-viewer');
    assert.ok(runner && vault && viewer);
    await app.start(vault);
    await app.start(runner);
    app.addTag(viewer, 'ai-full');
    app.removeTag(viewer, 'ai-full');
    const r = await pending;
    assert.equal(r.status, 0, r.stderr.toString());
    const body = json(r) as { events: { event: string; subject: string; class: string; time: string }[]; truncated: boolean };
    assert.deepEqual(
      body.events.map((e) => [e.subject, e.event, e.class]),
      [
        ['ai-runner', 'domain-unpaused', 'AppVM'],
        ['ai-runner', 'domain-start', 'AppVM'],
      ],
    );
    assert.equal(body.truncated, false);
    assert.ok(!r.stdout.toString().includes('sys-firewall') && !r.stdout.toString().includes('vault'));
    for (const bad of ['qmcp.Events', 'qmcp.Events+0', 'qmcp.Events+61', 'qmcp.Events+1.5']) {
      const x = await w.call(bad);
      assert.deepEqual([x.status, x.stdout.length, x.stderr.toString()], [126, 0, 'Request refused\n'], bad);
    }
  } finally {
    await w.close();
  }
});
