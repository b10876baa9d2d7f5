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
import { envServiceMode, startSimHost, type SimHost } from '../../src/sim/host.js';
import { hangBoundMs } from '../../verify/hang-bound.js';
import { countSubscriptions, EVENT_FLEET } from './event-host.js';
import { until } from './fake-qrexec.js';
import { OPEN_GATE } from '../../src/sim/open-gate.js';

interface Poll {
  events: { event: string; qube: string; class: string | null; time: string; property?: string; value?: unknown }[];
  cursor: string;
  missed?: boolean;
}

/**
 * Lengths of dom0's windows tried in turn by the delivery tests, seconds:
 * each window is waited out whole, so the second is short too, the last ones
 * for a loaded machine. The first holds the acts, whose two qube starts boot
 * two sandboxes, on an idle machine.
 */
const WINDOW_SECONDS: readonly number[] = [3, 6, 15, 60];

/** The straddle test's first try is late by design: its window only has to end, so it is the shortest dom0 allows. */
const STRADDLED_SECONDS = 1;

interface Served {
  readonly runner: QrexecRunner;
  readonly http: RunningHttp;
  poll(args: Record<string, unknown>): Promise<{ ok: Poll | null; text: string }>;
  close(): Promise<void>;
}

interface Machine {
  readonly dir: string;
  readonly host: SimHost;
  /** admin.Events subscriptions on the host so far: one per dom0 window. */
  subscriptions(): number;
  close(): Promise<void>;
}

async function machine(): Promise<Machine> {
  const dir = await mkdtemp(join(tmpdir(), 'qmcp-events-poll-'));
  // Served by the resident process unless QMCP_DOM0_SERVICE_MODE says otherwise: this is about events_poll, not the
  // per-call executable (test/services-read/events.test.ts), which would start a Node process for every dom0 window.
  const host = await startSimHost({
    dir,
    fleet: EVENT_FLEET,
    install: true,
    serviceMode: envServiceMode() ?? 'resident',
    initialSettings: { principal: 'mcp-control', namePrefix: 'ai-', poolCapBytes: 2 ** 40, gate: OPEN_GATE },
  });
  const subscriptions = countSubscriptions(host);
  return {
    dir,
    host,
    subscriptions,
    async close() {
      await host.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** An MCP server over HTTP on the simulated host at `dir`, whose event pump opens dom0 windows of `windowSeconds`. */
async function serve(dir: string, token: string, windowSeconds: number): Promise<Served> {
  const runner = new QrexecRunner(simClientOptions(dir));
  eventStreamsFor(runner, { windowSeconds });
  const http = await startHttp(runner, { host: '127.0.0.1', port: 0, token });
  const client = new Client({ name: 'test', version: '0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${http.port}/mcp`), { requestInit: { headers: { Authorization: `Bearer ${token}` } } }));
  return {
    runner,
    http,
    async poll(args) {
      // a poll may wait its whole wait_seconds: the client's own request timeout (60 s by default) must not end it first
      const r = await client.callTool({ name: 'events_poll', arguments: args }, { timeout: hangBoundMs(120_000) });
      const text = (r.content as { text?: string }[])[0]?.text ?? '';
      return { ok: r.isError === true ? null : (r.structuredContent as unknown as Poll), text };
    },
    async close() {
      await client.close();
      await http.close();
      runner.close();
    },
  };
}

/*
 * dom0's windows run back to back, with a gap between one's end and the next
 * one's start, and each has a fixed length. The acts count only when they and
 * a marker after them (a label set on ai-box) fell in one window: no window
 * began meanwhile and the marker came through, so every act's event did.
 * Otherwise the acts are done again on a fresh machine, with longer windows:
 * a loaded machine is slower, never red. Resolves to the number of tries;
 * `straddle` makes the first try's acts outlast its window.
 */
async function delivers(token: string, straddle: boolean): Promise<number> {
  for (const [i, seconds] of (straddle ? [STRADDLED_SECONDS, ...WINDOW_SECONDS] : WINDOW_SECONDS).entries()) {
    const m = await machine();
    const s = await serve(m.dir, token, seconds);
    try {
      const app = m.host.qubesd.app;
      const opened = await s.poll({ wait_seconds: 60 });
      assert.ok(opened.ok, opened.text);
      assert.deepEqual(opened.ok.events, []);
      // a second stream narrowed to property changes of ai-box and work (outside: nothing of it may come)
      const narrow = await s.poll({ wait_seconds: 60, only_qubes: ['ai-box', 'work'], only_events: ['property-changed'] });
      assert.ok(narrow.ok, narrow.text);
      // act once dom0's window is subscribed
      await until(() => m.subscriptions() > 0, 'the dom0 window');
      const window = m.subscriptions();
      await app.start(app.mustGet('work'));
      if (straddle && i === 0) await until(() => m.subscriptions() > window, 'the next dom0 window');
      await app.start(app.mustGet('ai-box'));
      app.addTag(app.mustGet('ai-box'), 'ai-exec');
      app.setProp(app.mustGet('ai-box'), 'label', 'purple');
      if (m.subscriptions() !== window) continue;
      const first = await s.poll({ cursor: opened.ok.cursor, wait_seconds: 60 });
      assert.ok(first.ok, first.text);
      const told = first.ok.events.map((e) => `${e.qube} ${e.event} ${e.class}`);
      if (told.at(-1) !== 'ai-box property-changed AppVM') continue;
      assert.deepEqual(told, ['ai-box started AppVM', 'ai-box property-changed AppVM']);
      assert.deepEqual(first.ok.events.map((e) => [e.property, e.value]), [[undefined, undefined], ['label', 'purple']]);
      const narrowed = await s.poll({ cursor: narrow.ok.cursor, wait_seconds: 60 });
      assert.deepEqual(narrowed.ok?.events.map((e) => `${e.qube} ${e.event} ${e.property} ${e.value}`), ['ai-box property-changed label purple']);
      // a narrowing comes only with a new stream
      const late = await s.poll({ cursor: narrow.ok.cursor, wait_seconds: 1, only_events: ['created'] });
      assert.equal(late.ok, null);
      assert.match(late.text, /narrow a stream when it opens/);
      assert.equal(first.ok.missed, undefined);
      assert.ok(!JSON.stringify(first.ok).includes('work') && !JSON.stringify(first.ok).includes('ai-exec'));
      // a retried poll with the same cursor gets the same events
      const retry = await s.poll({ cursor: opened.ok.cursor, wait_seconds: 1 });
      assert.deepEqual(retry.ok?.events, first.ok.events);
      // the cursor counts only what this stream delivered
      const count = Buffer.from(first.ok.cursor, 'base64url').readBigUInt64BE(16);
      assert.equal(count, 2n);
      // nothing new: the poll waits its time and returns no events and the same position
      const quiet = await s.poll({ cursor: first.ok.cursor, wait_seconds: 1 });
      assert.deepEqual(quiet.ok?.events, []);
      assert.equal(Buffer.from(quiet.ok?.cursor ?? '', 'base64url').readBigUInt64BE(16), 2n);
      return i + 1;
    } finally {
      await s.close();
      await m.close();
    }
  }
  assert.fail(`no dom0 window of up to ${WINDOW_SECONDS.at(-1)} s held the acts and the marker`);
}

describe('events_poll on the simulated host', () => {
  let m: Machine;
  let served: Served;
  let runner: QrexecRunner;
  let http: RunningHttp;
  let poll: Served['poll'];
  let dir: string;
  const token = randomBytes(32).toString('hex');

  before(async () => {
    m = await machine();
    dir = m.dir;
    served = await serve(dir, token, WINDOW_SECONDS[0] as number);
    ({ runner, http, poll } = served);
  });
  after(async () => {
    await served?.close();
    await m?.close();
  });

  it('opens a stream at once, then delivers the umbrella events after the cursor and nothing else', async (t) => {
    t.diagnostic(`judged on try ${await delivers(token, false)}`);
  });

  it('acts that outlast their dom0 window are not judged: they are done again with longer windows', async () => {
    assert.ok((await delivers(token, true)) >= 2);
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
