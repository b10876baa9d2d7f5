/**
 * events_poll against the simulated host over Streamable HTTP: a stream's
 * cursor, what a window delivers, forged and foreign cursors, idle expiry and
 * shutdown leaving no qrexec child behind.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { simClientOptions } from '../../src/cli/sim-principal.js';
import { CursorCodec } from '../../src/principal/events/cursor.js';
import { eventStreamsFor, UNKNOWN_CURSOR, type EventStreams } from '../../src/principal/events/streams.js';
import { startHttp, type RunningHttp } from '../../src/principal/http.js';
import { QrexecRunner } from '../../src/principal/qrexec.js';
import { startSimHost, type SimHost } from '../../src/sim/host.js';
import type { Fleet } from '../../src/sim/fleet.js';
import { until } from './fake-qrexec.js';

const FLEET: Fleet = {
  qubes: [
    { name: 'tpl', klass: 'TemplateVM' },
    { name: 'ai-tpl', klass: 'TemplateVM', tags: ['ai-managed', 'ai-full'] },
    { name: 'mcp-control', klass: 'AppVM', template: 'tpl', properties: { netvm: null } },
    { name: 'ai-box', klass: 'AppVM', template: 'ai-tpl', tags: ['ai-managed', 'ai-full'], properties: { netvm: null } },
    { name: 'work', klass: 'AppVM', template: 'tpl', properties: { netvm: null } },
  ],
};

interface Poll {
  events: { event: string; qube: string; class: string | null; time: string }[];
  cursor: string;
  missed?: boolean;
}

describe('events_poll on the simulated host', () => {
  let dir: string;
  let host: SimHost;
  let runner: QrexecRunner;
  let http: RunningHttp;
  let client: Client;
  const token = randomBytes(32).toString('hex');
  const listeners = (): number => (host.qubesd.app as unknown as { listeners: Set<unknown> }).listeners.size;

  const poll = async (args: Record<string, unknown>): Promise<{ ok: Poll | null; text: string }> => {
    const r = await client.callTool({ name: 'events_poll', arguments: args });
    const text = (r.content as { text?: string }[])[0]?.text ?? '';
    return { ok: r.isError === true ? null : (r.structuredContent as unknown as Poll), text };
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'qmcp-events-poll-'));
    host = await startSimHost({ dir, fleet: FLEET, install: true, initialSettings: { principal: 'mcp-control', namePrefix: 'ai-', poolCapBytes: 2 ** 40 } });
    runner = new QrexecRunner(simClientOptions(dir));
    eventStreamsFor(runner, { windowSeconds: 3 });
    http = await startHttp(runner, { host: '127.0.0.1', port: 0, token });
    client = new Client({ name: 'test', version: '0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${http.port}/mcp`), { requestInit: { headers: { Authorization: `Bearer ${token}` } } }));
  });
  after(async () => {
    await client?.close();
    await http?.close();
    runner?.close();
    await host?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('opens a stream at once, then delivers the umbrella events after the cursor and nothing else', async () => {
    const idle = listeners();
    const opened = await poll({ wait_seconds: 60 });
    assert.ok(opened.ok, opened.text);
    assert.deepEqual(opened.ok.events, []);
    // act once dom0's window is subscribed
    await until(() => listeners() > idle, 'the dom0 window');
    const app = host.qubesd.app;
    await app.start(app.mustGet('work'));
    await app.start(app.mustGet('ai-box'));
    app.addTag(app.mustGet('ai-box'), 'ai-exec');
    const first = await poll({ cursor: opened.ok.cursor, wait_seconds: 30 });
    assert.ok(first.ok, first.text);
    assert.deepEqual(
      first.ok.events.map((e) => `${e.qube} ${e.event} ${e.class}`),
      ['ai-box domain-unpaused AppVM', 'ai-box domain-start AppVM'],
    );
    assert.equal(first.ok.missed, undefined);
    assert.ok(!JSON.stringify(first.ok).includes('work') && !JSON.stringify(first.ok).includes('ai-exec'));
    // a retried poll with the same cursor gets the same events
    const retry = await poll({ cursor: opened.ok.cursor, wait_seconds: 1 });
    assert.deepEqual(retry.ok?.events, first.ok.events);
    // the cursor counts only what this stream delivered
    const count = Buffer.from(first.ok.cursor, 'base64url').readBigUInt64BE(16);
    assert.equal(count, 2n);
    // nothing new: the poll waits its time and returns no events and the same position
    const quiet = await poll({ cursor: first.ok.cursor, wait_seconds: 1 });
    assert.deepEqual(quiet.ok?.events, []);
    assert.equal(Buffer.from(quiet.ok?.cursor ?? '', 'base64url').readBigUInt64BE(16), 2n);
  });

  it('refuses a forged, edited or foreign cursor with an actionable text', async () => {
    const opened = await poll({ wait_seconds: 1 });
    assert.ok(opened.ok);
    const raw = Buffer.from(opened.ok.cursor, 'base64url');
    raw.writeBigUInt64BE(0n, 16);
    raw[20] = 1;
    const foreign = new CursorCodec().encode({ stream: raw.subarray(0, 16).toString('hex'), count: 0 });
    for (const cursor of [raw.toString('base64url'), foreign, 'not-a-cursor', opened.ok.cursor + 'A']) {
      const r = await poll({ cursor, wait_seconds: 1 });
      assert.equal(r.ok, null, cursor);
      assert.equal(r.text, UNKNOWN_CURSOR);
    }
  });

  it('ends an idle stream and its dom0 window; closing ends the rest with no child left', async () => {
    let now = 0;
    const own = new QrexecRunner(simClientOptions(dir));
    const streams: EventStreams = eventStreamsFor(own, { windowSeconds: 60, idleMs: 1000, now: () => now });
    const a = await streams.poll(undefined, 1, new AbortController().signal);
    await until(() => own.active === 1, 'the window child');
    now = 5000;
    streams.sweep();
    assert.equal(streams.size, 0);
    await until(() => own.active === 0 && !streams.pumpRunning, 'the window to end');
    await assert.rejects(streams.poll(a.cursor, 1, new AbortController().signal), { message: UNKNOWN_CURSOR });
    // the cap on streams ends the least recently used
    const capped = eventStreamsFor(new QrexecRunner(simClientOptions(dir)), { windowSeconds: 60, maxStreams: 2, now: () => now });
    const s1 = await capped.poll(undefined, 1, new AbortController().signal);
    now += 1;
    await capped.poll(undefined, 1, new AbortController().signal);
    now += 1;
    await capped.poll(undefined, 1, new AbortController().signal);
    assert.equal(capped.size, 2);
    await assert.rejects(capped.poll(s1.cursor, 1, new AbortController().signal), { message: UNKNOWN_CURSOR });
    await capped.close();
    // the server's own streams end with it
    await poll({ wait_seconds: 1 });
    await until(() => runner.active >= 1, 'the server window');
    await http.close();
    assert.equal(runner.active, 0);
    own.close();
  });
});
