/**
 * Each qube of the sandbox as an MCP resource, `qube://NAME`: the list is
 * qube_list's, a read is qube_info's, and both go through the same dom0
 * services, so a qube outside the sandbox and one that does not exist read
 * alike (one not-found error naming only the URI asked for). Subscriptions
 * and list changes are fed by the event windows events_poll uses: rows dom0
 * has already filtered and redacted, so a notification says nothing an
 * events_poll row would not. A 2025-11-25 client subscribes with
 * resources/subscribe; a 2026-07-28 one listens (subscriptions/listen), which
 * the SDK's entry serves and filters by (see listens.ts).
 */
import { ProtocolError, ProtocolErrorCode, ResourceNotFoundError, ResourceTemplate, type McpServer } from '@modelcontextprotocol/server';
import { isQubeName } from '../shared/names.js';
import type { CallContext } from './calls.js';
import { eventStreamsFor } from './events/streams.js';
import type { EventRow } from './events/stream.js';
import type { QrexecRunner } from './qrexec.js';
import { AgentRefusal, FAILED_TEXT } from './results.js';
import { UNTRUSTED } from './texts.js';
import { qubeInfo, qubeList } from './tools/see.js';

const SCHEME = 'qube://';
const MIME = 'application/json';
/** Subscriptions one session may hold; past it, the oldest goes (a convenience, not a control). */
const MAX_SUBSCRIPTIONS = 256;

/** The qube a `qube://NAME` URI names, or null. */
export function qubeOfUri(uri: string): string | null {
  if (!uri.startsWith(SCHEME)) return null;
  const name = uri.slice(SCHEME.length);
  return isQubeName(name) ? name : null;
}

function context(qrexec: QrexecRunner, signal: AbortSignal): CallContext {
  return { qrexec, signal };
}

/** A refusal, for any cause, is the one not-found answer; anything else one failure text. */
function readError(uri: string, e: unknown): Error {
  if (e instanceof AgentRefusal) return new ResourceNotFoundError(uri);
  return new ProtocolError(ProtocolErrorCode.InternalError, FAILED_TEXT);
}

/**
 * What the feed sends for one window's rows: list_changed when a qube came or
 * went, updated for each subscribed qube a row is about; after a gap, both
 * for everything, since anything may have changed.
 */
export function notificationsFor(rows: readonly EventRow[], gap: boolean, subscribed: ReadonlySet<string>): { listChanged: boolean; updated: string[] } {
  const listChanged = gap || rows.some((r) => r.event === 'created' || r.event === 'removed');
  const about = new Set(rows.map((r) => r.qube));
  const updated = [...subscribed].filter((q) => gap || about.has(q)).map((q) => `${SCHEME}${q}`);
  return { listChanged, updated };
}

/** The qubes a 2026-07-28 client listens to, as the SDK's entry honoured them. */
export interface Listened {
  qubes(): ReadonlySet<string>;
  /** FN is called whenever a listen that wants resource notifications is taken. */
  onListen(fn: () => void): void;
}

/**
 * Registers the qube resources on SERVER. With `live`, resources/subscribe
 * is served and, once the client has listed resources, subscribed or
 * listened, the event windows run until the session closes; without it (a
 * server that lives for one request) nothing is pushed. LISTENED, for a
 * 2026-07-28 session, stands for the subscriptions.
 */
export function registerQubeResources(server: McpServer, qrexec: QrexecRunner, live: boolean, listened?: Listened): void {
  const subscribed = new Set<string>();
  const wanted = (): ReadonlySet<string> => (listened === undefined ? subscribed : listened.qubes());
  let stopFeed: (() => void) | null = null;
  let closed = false;

  const startFeed = (): void => {
    if (!live || closed || stopFeed !== null) return;
    stopFeed = eventStreamsFor(qrexec).listen((rows, gap) => {
      const { listChanged, updated } = notificationsFor(rows, gap, wanted());
      // a notification the client can no longer take is dropped, as a lost window would be
      if (listChanged) server.server.sendResourceListChanged().catch(() => undefined);
      for (const uri of updated) server.server.sendResourceUpdated({ uri }).catch(() => undefined);
    });
  };

  server.registerResource(
    'qube',
    new ResourceTemplate(`${SCHEME}{qube}`, {
      list: async (ctx) => {
        startFeed();
        try {
          const { qubes } = (await qubeList.run({}, context(qrexec, ctx.mcpReq.signal))) as { qubes: { qube: string; class: string }[] };
          return { resources: qubes.map((q) => ({ uri: `${SCHEME}${q.qube}`, name: q.qube, title: `${q.qube} (${q.class})`, mimeType: MIME })) };
        } catch {
          throw new ProtocolError(ProtocolErrorCode.InternalError, FAILED_TEXT);
        }
      },
    }),
    {
      title: 'Qube',
      description: "A qube of your sandbox: qube_info's result (class, label, template, netvm, memory, power state, ...)." + UNTRUSTED,
      mimeType: MIME,
    },
    async (uri, _variables, ctx) => {
      const href = uri.toString();
      const qube = qubeOfUri(href);
      if (qube === null) throw new ResourceNotFoundError(href);
      try {
        const info = await qubeInfo.run({ qube }, context(qrexec, ctx.mcpReq.signal));
        return { contents: [{ uri: href, mimeType: MIME, text: JSON.stringify(info) }] };
      } catch (e) {
        throw readError(href, e);
      }
    },
  );

  if (!live) return;
  listened?.onListen(startFeed);
  server.server.setRequestHandler('resources/subscribe', (request) => {
    const qube = qubeOfUri(request.params.uri);
    // any well-formed name is taken: whether it is in the sandbox shows only in what dom0 later tells
    if (qube === null) throw new ProtocolError(ProtocolErrorCode.InvalidParams, 'Subscribe to a qube://NAME URI.');
    if (!subscribed.has(qube) && subscribed.size >= MAX_SUBSCRIPTIONS) subscribed.delete(subscribed.values().next().value as string);
    subscribed.add(qube);
    startFeed();
    return {};
  });
  server.server.setRequestHandler('resources/unsubscribe', (request) => {
    const qube = qubeOfUri(request.params.uri);
    if (qube !== null) subscribed.delete(qube);
    return {};
  });
  const previous = server.server.onclose;
  server.server.onclose = () => {
    closed = true;
    stopFeed?.();
    stopFeed = null;
    previous?.();
  };
}
