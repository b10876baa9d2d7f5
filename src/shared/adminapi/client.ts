/** A small Admin API client over qubesd's Unix socket. */
import { connect } from 'node:net';
import type { AdminEvent } from './wire.js';
import { EventStreamParser, encodeRequest, parseReply } from './wire.js';

export interface QubesdCall {
  readonly method: string;
  readonly arg?: string;
  /** Defaults to 'dom0'. */
  readonly src?: string;
  readonly dest: string;
  readonly destType?: 'name' | 'keyword';
  readonly payload?: Buffer | string;
}

export type QubesdResult =
  | { readonly ok: true; readonly data: Buffer }
  | { readonly ok: false; readonly errorClass: string; readonly message: string }
  /** qubesd closed without a byte: a framing error or a non-Qubes exception. */
  | { readonly ok: false; readonly empty: true; readonly errorClass: ''; readonly message: string };

/** Makes one call and resolves to its reply; rejects only when the socket cannot be reached. */
export function qubesdCall(socketPath: string, call: QubesdCall): Promise<QubesdResult> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let connected = false;
    const sock = connect(socketPath, () => {
      connected = true;
      sock.end(encodeRequest(call));
    });
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.on('error', (err) => {
      if (!connected) reject(err);
    });
    sock.on('close', () => {
      if (!connected) return;
      const reply = parseReply(Buffer.concat(chunks));
      if (!reply) {
        resolve({ ok: false, empty: true, errorClass: '', message: 'empty or malformed reply from qubesd' });
      } else if (reply.ok) {
        resolve({ ok: true, data: reply.data });
      } else {
        resolve({ ok: false, errorClass: reply.errorClass, message: reply.message });
      }
    });
  });
}

/**
 * Subscribes to admin.Events for `dest` ('dom0' = everything) and calls
 * onEvent for each one, the first being connection-established. Resolves when
 * the stream ends (signal aborted or server closed).
 */
export function qubesdEvents(
  socketPath: string,
  dest: string,
  onEvent: (ev: AdminEvent) => void,
  signal?: AbortSignal,
  src = 'dom0',
): Promise<void> {
  return new Promise((resolve, reject) => {
    const parser = new EventStreamParser();
    let connected = false;
    const sock = connect(socketPath, () => {
      connected = true;
      sock.end(encodeRequest({ method: 'admin.Events', src, dest }));
    });
    const stop = (): void => {
      sock.destroy();
    };
    if (signal) {
      if (signal.aborted) stop();
      else signal.addEventListener('abort', stop, { once: true });
    }
    sock.on('data', (c: Buffer) => {
      try {
        for (const ev of parser.push(c)) onEvent(ev);
      } catch (err) {
        sock.destroy();
        reject(err as Error);
      }
    });
    sock.on('error', (err) => {
      if (!connected) reject(err);
    });
    sock.on('close', () => {
      signal?.removeEventListener('abort', stop);
      const rest = parser.rest;
      const reply = rest.length ? parseReply(rest) : null;
      if (reply && !reply.ok) reject(new Error(`${reply.errorClass}: ${reply.message}`));
      else resolve();
    });
  });
}
