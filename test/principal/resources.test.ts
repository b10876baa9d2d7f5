/**
 * The qube resources on the simulated host: the list and reads match
 * qube_list and qube_info, an outside qube reads as a missing one, and a
 * subscription (a 2025-11-25 resources/subscribe or a 2026-07-28
 * subscriptions/listen) is told of its qube's changes and of qubes coming and
 * going, never of an outside qube's.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, test } from 'node:test';
import { Client } from '@modelcontextprotocol/client';
import { InMemoryTransport } from '@modelcontextprotocol/server';
import { simClientOptions } from '../../src/cli/sim-principal.js';
import { eventStreamsFor } from '../../src/principal/events/streams.js';
import { QrexecRunner } from '../../src/principal/qrexec.js';
import { notificationsFor, qubeOfUri } from '../../src/principal/resources.js';
import type { EventRow } from '../../src/principal/events/stream.js';
import { createServer } from '../../src/principal/server.js';
import { serveSession } from '../../src/principal/stdio.js';
import { envServiceMode, startSimHost, type SimHost } from '../../src/sim/host.js';
import { OPEN_GATE } from '../../src/sim/open-gate.js';
import { weakened } from '../plans/helpers.js';
import { within } from './fake-qrexec.js';
import { countSubscriptions, EVENT_FLEET } from './event-host.js';

test('the feed: list_changed when a qube comes or goes, updated for the subscribed qubes a row is about, everything after a gap', async () => {
  const row = (qube: string, event: string): { event: string; qube: string; class: string; time: string } => ({ event, qube, class: 'AppVM', time: '-' });
  const subs = new Set(['ai-a', 'ai-b']);
  assert.deepEqual(notificationsFor([row('ai-a', 'started'), row('ai-c', 'stopped')], false, subs), { listChanged: false, updated: ['qube://ai-a'] });
  assert.deepEqual(notificationsFor([row('ai-c', 'created')], false, subs), { listChanged: true, updated: [] });
  assert.deepEqual(notificationsFor([], true, subs), { listChanged: true, updated: ['qube://ai-a', 'qube://ai-b'] });
  // weakened: a gap not told, so a lost window goes unnoticed
  const weak = ((await import(weakened('principal/resources.js', 'const listChanged = gap ||', 'const listChanged ='))) as { notificationsFor: typeof notificationsFor }).notificationsFor;
  assert.equal(weak([], true, subs).listChanged, false);
  assert.equal(qubeOfUri('qube://ai-a'), 'ai-a');
  for (const bad of ['qube://', 'qube://-x', 'file:///etc', 'qube://a/b', 'QUBE://ai-a']) assert.equal(qubeOfUri(bad), null, bad);
});

/** One MCP session on RUNNER, over memory, with the notifications its client was sent. */
interface Session {
  readonly client: Client;
  readonly updated: string[];
  listChanged: number;
  /** A round trip, after which every notification sent before it has arrived. */
  flush(): Promise<unknown>;
  close(): Promise<void>;
}

/** A 2025-11-25 session on one server instance. */
async function session(runner: QrexecRunner, create: typeof createServer = createServer): Promise<Session> {
  const server = create(runner, { live: true });
  const [serverSide, clientSide] = InMemoryTransport.createLinkedPair();
  await server.connect(serverSide);
  const client = new Client({ name: 'test', version: '0' });
  return recorded(client, clientSide, () => client.ping(), () => server.close());
}

/** A 2026-07-28 session through the stdio entry qmcp serve uses. */
async function modernSession(runner: QrexecRunner, serve: typeof serveSession = serveSession): Promise<Session> {
  const [serverSide, clientSide] = InMemoryTransport.createLinkedPair();
  const handle = serve(runner, serverSide);
  const client = new Client({ name: 'test', version: '0' }, { versionNegotiation: { mode: { pin: '2026-07-28' } } });
  // ping is gone in 2026-07-28; server/discover is its round trip
  return recorded(client, clientSide, () => client.discover(), () => handle.close());
}

async function recorded(client: Client, wire: InMemoryTransport, flush: () => Promise<unknown>, closeServer: () => Promise<void>): Promise<Session> {
  const s: Session = {
    client,
    updated: [],
    listChanged: 0,
    flush,
    async close() {
      await client.close();
      await closeServer();
    },
  };
  client.setNotificationHandler('notifications/resources/updated', (n) => {
    s.updated.push(n.params.uri);
  });
  client.setNotificationHandler('notifications/resources/list_changed', () => {
    s.listChanged++;
  });
  await client.connect(wire);
  return s;
}

describe('qube resources on the simulated host', () => {
  let dir: string;
  let host: SimHost;
  let runner: QrexecRunner;
  let real: Session;
  let client: Client;
  /** admin.Events subscriptions on the host so far: one per dom0 window. */
  let subscriptions: () => number;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'qmcp-resources-'));
    // Served by the resident process unless QMCP_DOM0_SERVICE_MODE says otherwise: this is about the resources, not the
    // per-call executable (test/boundary/invariants.test.ts), which starts a Node process for every dom0 call.
    host = await startSimHost({ dir, fleet: EVENT_FLEET, install: true, serviceMode: envServiceMode() ?? 'resident', initialSettings: { principal: 'mcp-control', namePrefix: 'ai-', poolCapBytes: 2 ** 40, gate: OPEN_GATE } });
    subscriptions = countSubscriptions(host);
    runner = new QrexecRunner(simClientOptions(dir));
    // the shortest window dom0 takes: a change is made again in each next one until one tells it
    eventStreamsFor(runner, { windowSeconds: 1 });
    real = await session(runner);
    client = real.client;
  });
  after(async () => {
    await real?.close();
    runner?.close();
    await host?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('advertises subscribe and list changes, and lists the sandbox qubes only', async () => {
    assert.deepEqual(client.getServerCapabilities()?.resources, { subscribe: true, listChanged: true });
    const { resources } = await client.listResources();
    assert.deepEqual(resources.map((r) => r.uri).sort(), ['qube://ai-box', 'qube://ai-tpl']);
    const { resourceTemplates } = await client.listResourceTemplates();
    assert.deepEqual(resourceTemplates.map((t) => t.uriTemplate), ['qube://{qube}']);
  });

  it("reads a qube as qube_info does; an outside qube and a missing one read alike", async () => {
    const read = await client.readResource({ uri: 'qube://ai-box' });
    const body = JSON.parse((read.contents[0] as { text: string }).text) as { qube: string; properties: Record<string, unknown> };
    const info = await client.callTool({ name: 'qube_info', arguments: { qube: 'ai-box' } });
    assert.deepEqual(body, info.structuredContent);
    const failure = async (uri: string): Promise<string> => {
      try {
        await client.readResource({ uri });
      } catch (e) {
        const err = e as { code?: unknown; message: string; data?: unknown };
        return JSON.stringify({ code: err.code, message: err.message.replaceAll(uri, 'URI'), data: JSON.stringify(err.data ?? null).replaceAll(uri, 'URI') });
      }
      return 'read';
    };
    const outside = await failure('qube://work');
    assert.notEqual(outside, 'read');
    assert.equal(await failure('qube://nothing-here'), outside);
  });

  /*
   * dom0's windows run back to back with a gap between them, and a window
   * starts in the MCP server well before dom0 subscribes to qubesd's events
   * (seconds, on a loaded machine): a change made when the server opens a
   * window falls in that gap and is never told. So each change is made once
   * dom0's window is subscribed, again in each next window until one tells
   * it; a witness listening to the same windows after the sessions says when
   * one did, and a round trip on each session flushes what was sent before it.
   */
  it('a subscription is told when its qube changes and the list when a qube comes; an outside qube never', async () => {
    // weakened: the feed sends nothing
    const weakResources = weakened('principal/resources.js', 'const { listChanged, updated } = notificationsFor(rows, gap, wanted());', 'const { listChanged, updated } = { listChanged: false, updated: [] };');
    const weakServer = (await import(weakened('principal/server.js', null, '', { 'principal/resources.js': weakResources }))) as { createServer: typeof createServer };
    const weak = await session(runner, weakServer.createServer);
    // weakened: a listen does not stand for the subscriptions, so a 2026-07-28 client is told the list only
    const deafResources = weakened('principal/resources.js', 'listened === undefined ? subscribed : listened.qubes()', 'subscribed');
    const deafServer = weakened('principal/server.js', null, '', { 'principal/resources.js': deafResources });
    const deaf = await modernSession(runner, ((await import(weakened('principal/stdio.js', null, '', { 'principal/server.js': deafServer }))) as { serveSession: typeof serveSession }).serveSession);
    const modern = await modernSession(runner);
    const sessions = [real, weak, modern, deaf];
    try {
      for (const s of [real, weak]) {
        await s.client.subscribeResource({ uri: 'qube://ai-box' });
        await s.client.subscribeResource({ uri: 'qube://work' });
      }
      for (const s of [modern, deaf]) {
        const listen = await s.client.listen({ resourceSubscriptions: ['qube://ai-box', 'qube://work'], resourcesListChanged: true });
        assert.deepEqual(listen.honoredFilter, { resourceSubscriptions: ['qube://ai-box', 'qube://work'], resourcesListChanged: true });
      }
      const seen: EventRow[] = [];
      const stopWitness = eventStreamsFor(runner).listen((rows) => seen.push(...rows));
      const app = host.qubesd.app;
      const toldAfter = async (act: () => void, told: (r: EventRow) => boolean, what: string): Promise<void> => {
        let at = subscriptions();
        await within(120_000, () => {
          if (subscriptions() > at) {
            at = subscriptions();
            act();
          }
          return seen.some(told);
        }, what);
        for (const s of sessions) await s.flush();
      };
      let label = 0;
      await toldAfter(
        () => {
          const colour = ['red', 'blue'][label++ % 2] as string;
          app.setProp(app.mustGet('work'), 'label', colour);
          app.setProp(app.mustGet('ai-box'), 'label', colour);
        },
        (r) => r.qube === 'ai-box' && r.event === 'property-changed',
        "a window telling ai-box's label",
      );
      for (const s of [real, modern]) assert.ok(s.updated.includes('qube://ai-box'), s.updated.join(' '));
      assert.ok(!weak.updated.includes('qube://ai-box'), 'the weakened feed is caught');
      assert.ok(!deaf.updated.includes('qube://ai-box'), 'the feed deaf to listens is caught');
      let n = 0;
      await toldAfter(
        () => app.addTag(app.addVm({ name: `ai-new${n++}`, klass: 'AppVM', label: 'red', template: 'ai-tpl' }), 'ai-managed'),
        (r) => r.event === 'created',
        'a window telling a creation',
      );
      assert.ok(real.listChanged > 0 && modern.listChanged > 0);
      assert.equal(weak.listChanged, 0, 'the weakened feed is caught');
      assert.ok(!sessions.flatMap((s) => s.updated).includes('qube://work'), real.updated.join(' '));
      stopWitness();
      await real.client.unsubscribeResource({ uri: 'qube://ai-box' });
    } finally {
      for (const s of [weak, modern, deaf]) await s.close();
    }
  });
});
