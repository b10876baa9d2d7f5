/**
 * Streamable HTTP on node:http. Every request passes the guards (Host,
 * Origin, bearer token, method, body size) before it reaches the SDK's
 * handler; no CORS headers and no OAuth metadata are ever served. Serving is
 * stateless: a fresh server instance per request, so nothing is shared
 * between clients and no sessions exist to expire.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createMcpHandler } from '@modelcontextprotocol/server';
import { closeEventStreams } from './events/streams.js';
import { bearerMatches, defaultAllowedHosts, tokenDigest } from './http-guard.js';
import type { QrexecRunner } from './qrexec.js';
import { createServer } from './server.js';
import type { CallObserver } from './tool.js';
import { QmcpError } from '../shared/errors.js';

export interface HttpOptions {
  readonly host: string;
  readonly port: number;
  readonly token: string;
  /** Host header values accepted besides the bound loopback forms (e.g. an onion name). */
  readonly allowedHosts?: readonly string[];
  /** Origins accepted; empty means any request carrying Origin is refused. */
  readonly allowedOrigins?: readonly string[];
  readonly maxBodyBytes?: number;
  readonly maxConcurrentRequests?: number;
  /** Told of every tool call and how it ended; reporting only. */
  readonly onCall?: CallObserver;
}

export const MCP_PATH = '/mcp';
const DEFAULT_MAX_BODY = 1024 * 1024;
const DEFAULT_MAX_CONCURRENT = 32;

function plain(res: ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', ...headers });
  res.end(text + '\n');
}

class TooLarge extends QmcpError {
  readonly code = 'ERR_QMCP_HTTP_TOO_LARGE';
}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.removeAllListeners('data');
        req.resume();
        reject(new TooLarge());
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** A body as JSON, or undefined when it is none (the SDK then reads it and answers its own error). */
function parseBody(body: Buffer | undefined): unknown {
  if (body === undefined || body.length === 0) return undefined;
  try {
    return JSON.parse(body.toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}

/** The request id a JSON-RPC request carries, or the one a cancellation names. */
function parseMessage(m: unknown): { id?: string; cancels?: string } | null {
  if (typeof m !== 'object' || m === null || Array.isArray(m)) return null;
  const { id, method, params } = m as { id?: unknown; method?: unknown; params?: unknown };
  const key = (v: unknown): string | undefined => (typeof v === 'string' || typeof v === 'number' ? JSON.stringify(v) : undefined);
  if (method === 'notifications/cancelled' && typeof params === 'object' && params !== null) {
    const cancels = key((params as { requestId?: unknown }).requestId);
    return cancels === undefined ? null : { cancels };
  }
  const k = key(id);
  return k === undefined || typeof method !== 'string' ? null : { id: k };
}

export interface RunningHttp {
  readonly server: Server;
  readonly port: number;
  /** From now on only this token is accepted (the caller has checked it as it checks the first). */
  setToken(token: string): void;
  close(): Promise<void>;
}

export async function startHttp(qrexec: QrexecRunner, options: HttpOptions): Promise<RunningHttp> {
  let expected = tokenDigest(options.token);
  const origins = new Set(options.allowedOrigins ?? []);
  const maxBody = options.maxBodyBytes ?? DEFAULT_MAX_BODY;
  const maxConcurrent = options.maxConcurrentRequests ?? DEFAULT_MAX_CONCURRENT;
  const handler = createMcpHandler(() => createServer(qrexec, { onCall: options.onCall }), {
    legacy: 'stateless',
    maxRequestBodySize: maxBody,
    onerror: () => undefined,
  });
  let hosts = new Set<string>();
  let inFlight = 0;
  // 2025-11-25 clients cancel with a separate POST that a stateless instance
  // cannot see; the id is all there is to match it by (every token holder is
  // the same principal, so a clash only cancels one of its own calls)
  const running = new Map<string, Set<AbortController>>();

  const serve = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const host = (req.headers.host ?? '').toLowerCase();
    if (!hosts.has(host)) return plain(res, 403, 'Forbidden: Host not allowed.');
    const origin = req.headers.origin;
    if (origin !== undefined && !origins.has(origin)) return plain(res, 403, 'Forbidden: Origin not allowed.');
    if (!bearerMatches(req.headers.authorization, expected)) {
      return plain(res, 401, 'Unauthorized: send "Authorization: Bearer <token>".', { 'www-authenticate': 'Bearer' });
    }
    const path = (req.url ?? '').split('?')[0];
    if (path !== MCP_PATH) return plain(res, 404, 'Not found.');
    if (req.method !== 'POST' && req.method !== 'GET' && req.method !== 'DELETE') return plain(res, 405, 'Method not allowed.', { allow: 'POST, GET, DELETE' });
    const declared = Number(req.headers['content-length'] ?? '0');
    if (Number.isFinite(declared) && declared > maxBody) return plain(res, 413, 'Payload too large.', { connection: 'close' });
    if (inFlight >= maxConcurrent) return plain(res, 503, 'Too many requests in flight.', { 'retry-after': '1' });
    inFlight++;
    const abort = new AbortController();
    // a response that ended has nothing to stop (an abort builds an exception with its stack)
    res.on('close', () => {
      if (!res.writableFinished) abort.abort();
    });
    try {
      let body: Buffer | undefined;
      if (req.method === 'POST') {
        try {
          body = await readBody(req, maxBody);
        } catch (e) {
          return plain(res, e instanceof TooLarge ? 413 : 400, e instanceof TooLarge ? 'Payload too large.' : 'Bad request.', { connection: 'close' });
        }
      }
      const parsed = parseBody(body);
      const message = parseMessage(parsed);
      if (message?.cancels !== undefined) for (const c of running.get(message.cancels) ?? []) c.abort();
      if (message?.id !== undefined) {
        const key = message.id;
        const set = running.get(key) ?? new Set<AbortController>();
        set.add(abort);
        running.set(key, set);
        res.on('close', () => {
          set.delete(abort);
          if (set.size === 0 && running.get(key) === set) running.delete(key);
        });
      }
      const headers = new Headers();
      for (const [k, v] of Object.entries(req.headers)) {
        // the token stays here: it is never handed on, not even to the SDK
        if (v === undefined || k === 'authorization') continue;
        headers.set(k, Array.isArray(v) ? v.join(', ') : v);
      }
      // a body parsed here is handed over parsed: the SDK then neither reads nor copies it
      const request = new Request(`http://${host}${req.url ?? '/'}`, {
        method: req.method,
        headers,
        signal: abort.signal,
        ...(body !== undefined && parsed === undefined ? { body: new Uint8Array(body) } : {}),
      });
      const response = await handler.fetch(request, parsed === undefined ? undefined : { parsedBody: parsed });
      const out: Record<string, string> = {};
      response.headers.forEach((value, key) => {
        if (!key.startsWith('access-control-')) out[key] = value;
      });
      res.writeHead(response.status, out);
      if (response.body === null) {
        res.end();
        return;
      }
      const reader = response.body.getReader();
      abort.signal.addEventListener('abort', () => void reader.cancel().catch(() => undefined), { once: true });
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        res.write(value);
      }
      res.end();
    } finally {
      inFlight--;
    }
  };

  const server = createHttpServer((req, res) => {
    serve(req, res).catch(() => plain(res, 500, 'Internal error.'));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  hosts = new Set([...defaultAllowedHosts(options.host, port), ...(options.allowedHosts ?? []).map((h) => h.toLowerCase())]);
  return {
    server,
    port,
    setToken: (token: string) => {
      expected = tokenDigest(token);
    },
    close: async () => {
      await closeEventStreams(qrexec);
      await handler.close().catch(() => undefined);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
