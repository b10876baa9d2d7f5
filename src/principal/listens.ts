/**
 * The qubes a 2026-07-28 client listens to over stdio. That protocol
 * subscribes with `subscriptions/listen`, which the SDK's stdio entry serves
 * itself (`StdioListenRouter`): the server instance never sees the request,
 * and the entry only drops the instance's change notifications that no
 * listen asked for. The instance must still know the listened qubes to tell
 * each of them after a lost window, as it tells a 2025-11-25 client's
 * subscriptions, so this sits between the entry and the wire and reads the
 * entry's own acknowledgements (what it honoured) and the client's cancels.
 */
import { SUBSCRIPTION_ID_META_KEY, type JSONRPCMessage, type Transport, type TransportSendOptions } from '@modelcontextprotocol/server';
import { qubeOfUri } from './resources.js';

/** Qubes kept from one listen; past it, the rest of its list is not told after a gap (a convenience, not a control). */
export const MAX_LISTENED_PER_LISTEN = 256;

type Id = string | number;

function record(value: unknown): Record<string, unknown> | null {
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : null;
}

/** What the entry told the client it honours, keyed by the listen's id; null if MESSAGE is no acknowledgement. */
function acknowledged(message: JSONRPCMessage): { id: Id; qubes: string[]; list: boolean } | null {
  if (!('method' in message) || message.method !== 'notifications/subscriptions/acknowledged' || 'id' in message) return null;
  const params = record(message.params);
  const id = record(params?.['_meta'])?.[SUBSCRIPTION_ID_META_KEY];
  if (typeof id !== 'string' && typeof id !== 'number') return null;
  const honoured = record(params?.['notifications']);
  const uris = Array.isArray(honoured?.['resourceSubscriptions']) ? (honoured['resourceSubscriptions'] as unknown[]) : [];
  const qubes = uris.flatMap((u) => (typeof u === 'string' && qubeOfUri(u) !== null ? [qubeOfUri(u) as string] : [])).slice(0, MAX_LISTENED_PER_LISTEN);
  return { id, qubes, list: honoured?.['resourcesListChanged'] === true };
}

/** A transport that passes everything through and keeps what the listens on it want. */
export class ListenWatch implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: Transport['onmessage'];
  private readonly listens = new Map<Id, string[]>();
  private readonly listeners = new Set<() => void>();

  constructor(private readonly wire: Transport) {}

  /** The qubes some live listen names. */
  qubes(): ReadonlySet<string> {
    return new Set([...this.listens.values()].flat());
  }

  /** Calls FN whenever a listen that wants resource notifications is acknowledged. */
  onListen(fn: () => void): void {
    this.listeners.add(fn);
  }

  start(): Promise<void> {
    this.wire.onmessage = (message, extra) => {
      // a cancel names the listen it ends; the entry takes it before the instance would see it
      if ('method' in message && message.method === 'notifications/cancelled' && !('id' in message)) {
        const id = record(message.params)?.['requestId'];
        if (typeof id === 'string' || typeof id === 'number') this.listens.delete(id);
      }
      this.onmessage?.(message, extra);
    };
    this.wire.onclose = () => {
      this.listens.clear();
      this.onclose?.();
    };
    this.wire.onerror = (error) => this.onerror?.(error);
    return this.wire.start();
  }

  send(message: JSONRPCMessage, options?: TransportSendOptions): Promise<void> {
    const ack = acknowledged(message);
    if (ack !== null) {
      this.listens.set(ack.id, ack.qubes);
      if (ack.qubes.length > 0 || ack.list) for (const fn of this.listeners) fn();
    } else if ('id' in message && !('method' in message)) {
      // the listen's own response ends it (the server closing it gracefully)
      this.listens.delete(message.id as Id);
    }
    return this.wire.send(message, options);
  }

  close(): Promise<void> {
    this.listens.clear();
    return this.wire.close();
  }

  setProtocolVersion = (version: string): void => {
    this.wire.setProtocolVersion?.(version);
  };
}
