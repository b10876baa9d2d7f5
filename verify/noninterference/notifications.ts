/**
 * The resource notifications live MCP sessions receive while the pair's
 * event window runs: a 2025-11-25 client subscribed with resources/subscribe
 * and a 2026-07-28 client listening through the stdio entry (serveSession),
 * both on one runner, so one feed of dom0 windows serves them. Each is
 * subscribed to visible, outside and absent names; what each is sent (URIs
 * in order, and the reads they make the client do) is compared across the
 * pair.
 */
import { Client } from '@modelcontextprotocol/client';
import { InMemoryTransport, type McpServer } from '@modelcontextprotocol/server';
import { simRunner } from '../../src/cli/sim-principal.js';
import { closeEventStreams, eventStreamsFor } from '../../src/principal/events/streams.js';
import type { EventRow } from '../../src/principal/events/stream.js';
import type { QrexecRunner } from '../../src/principal/qrexec.js';
import { createServer, type ServerOptions } from '../../src/principal/server.js';
import { serveSession } from '../../src/principal/stdio.js';
import { hangBoundMs } from '../hang-bound.js';
import type { Machine } from './machines.js';
import { WORLD } from './machines.js';
import { holdsEvery, nextSubscription, type ActRow } from './observe.js';

/** The MCP server a machine's 2025-11-25 session runs: the real one, or a weakened variant's. */
export type ServerFactory = (m: Machine, qrexec: QrexecRunner, options: ServerOptions) => McpServer;

const realServer: ServerFactory = (_m, qrexec, options) => createServer(qrexec, options);

/** The names subscribed: the agent's world (its acting and marker qubes among them), outside and absent ones. */
export function subscribedNames(outside: readonly string[]): string[] {
  return [...new Set([...WORLD, ...outside.slice(0, 6), 'ai-nothing'])];
}

interface Recorder {
  readonly client: Client;
  readonly told: string[];
  readonly flush: () => Promise<unknown>;
}

function record(client: Client, flush: (c: Client) => Promise<unknown>): Recorder {
  const r: Recorder = { client, told: [], flush: () => flush(client) };
  client.setNotificationHandler('notifications/resources/updated', (n) => {
    r.told.push(`updated ${n.params.uri}`);
  });
  client.setNotificationHandler('notifications/resources/list_changed', () => {
    r.told.push('list_changed');
  });
  return r;
}

/** What a client is sent and the reads that makes it do, as one comparable text. */
async function transcript(r: Recorder): Promise<string> {
  const settle = async (p: Promise<unknown>): Promise<string> => {
    try {
      return JSON.stringify(await p);
    } catch (e) {
      const err = e as { code?: unknown; message?: unknown };
      return JSON.stringify({ code: err.code, message: err.message });
    }
  };
  const lines: string[] = [];
  for (const what of r.told) {
    const uri = what.startsWith('updated ') ? what.slice('updated '.length) : null;
    lines.push(`${what} -> ${await settle(uri === null ? r.client.listResources() : r.client.readResource({ uri }))}`);
  }
  return lines.join('\n');
}

export interface LiveSessions {
  /**
   * Once the event window's acts are done: waits for the feed's first dom0
   * window to end (it must hold every one of the ACTS' rows, or they may
   * have been split between windows: `late`), then what each client was
   * sent, and ends the sessions.
   */
  settle(acts: readonly ActRow[]): Promise<{ late: boolean; legacy: string; modern: string; count: number }>;
  close(): Promise<void>;
}

/**
 * Opens both sessions on M and subscribes them, the feed's windows SECONDS
 * long; resolves once the feed's first window is subscribed to qubesd, so
 * every act after it is in that window while it lasts.
 */
export async function liveSessions(m: Machine, outside: readonly string[], seconds: number, server: ServerFactory = realServer): Promise<LiveSessions> {
  const runner = simRunner(m.dir);
  // longer than the event window it runs beside, which opens after it
  eventStreamsFor(runner, { windowSeconds: seconds + 2 });
  const [legacyServerSide, legacyClientSide] = InMemoryTransport.createLinkedPair();
  const legacyServer = server(m, runner, { live: true });
  await legacyServer.connect(legacyServerSide);
  const legacy = record(new Client({ name: 'qmcp-verify', version: '0' }), (c) => c.ping());
  await legacy.client.connect(legacyClientSide);
  const [modernServerSide, modernClientSide] = InMemoryTransport.createLinkedPair();
  const handle = serveSession(runner, modernServerSide);
  const modern = record(new Client({ name: 'qmcp-verify', version: '0' }, { versionNegotiation: { mode: { pin: '2026-07-28' } } }), (c) => c.discover());
  await modern.client.connect(modernClientSide);
  const windows: EventRow[][] = [];
  let told = (): void => undefined;
  const firstTold = new Promise<void>((resolve) => (told = resolve));
  let stopWitness = (): void => undefined;
  let closing: Promise<void> | null = null;
  const close = (): Promise<void> => (closing ??= end());
  const end = async (): Promise<void> => {
    stopWitness();
    await Promise.allSettled([legacy.client.close(), modern.client.close()]);
    await Promise.allSettled([legacyServer.close(), handle.close()]);
    await closeEventStreams(runner);
    runner.close();
  };
  try {
    const names = subscribedNames(outside);
    const opened = nextSubscription(m);
    // the first subscription starts the feed; its window opens in qubesd once dom0 subscribes
    for (const n of names) await legacy.client.subscribeResource({ uri: `qube://${n}` });
    await modern.client.listen({ resourceSubscriptions: names.map((n) => `qube://${n}`), resourcesListChanged: true });
    // a witness on the same feed, after the sessions, says when a window was told
    stopWitness = eventStreamsFor(runner).listen((rows) => {
      windows.push([...rows]);
      told();
    });
    const bound = hangBoundMs(30_000);
    let timer: NodeJS.Timeout | undefined;
    const subscribed = await Promise.race([opened.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), bound)))]);
    clearTimeout(timer);
    if (!subscribed) throw new Error(`machine ${m.label}: the feed's dom0 window did not open within ${bound} ms`);
  } catch (err) {
    await close();
    throw err;
  }
  return {
    close,
    async settle(acts) {
      await Promise.race([firstTold, new Promise((r) => setTimeout(r, hangBoundMs((seconds + 30) * 1000)).unref())]);
      // the witness listens after the sessions' servers: a window it was told, they were sent first; a round trip brings it
      await Promise.all([legacy.flush(), modern.flush()]);
      stopWitness();
      // the first window must hold every act's row and be the only one told: else the acts may be split
      const first = windows[0];
      const late = windows.length !== 1 || first === undefined || !holdsEvery(first, acts);
      const result = { late, legacy: await transcript(legacy), modern: await transcript(modern), count: legacy.told.length + modern.told.length };
      await close();
      return result;
    },
  };
}
