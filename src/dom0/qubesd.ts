import { qubesdCall } from '../shared/adminapi/client.js';
import type { QubesdCall, QubesdResult } from '../shared/adminapi/client.js';
import { QmcpAnswerError } from '../shared/errors.js';

/** A Qubes exception reported by qubesd; its class and text stay in dom0 (audit, journal). */
export class QubesdError extends QmcpAnswerError {
  readonly code = 'ERR_QMCP_QUBESD';

  readonly errorClass: string;
  constructor(errorClass: string, message: string) {
    super(message);
    this.errorClass = errorClass;
  }
}

/** qubesd's exception for a qube that does not exist. */
export const NOT_FOUND = 'QubesVMNotFoundError';

/** Whether qubesd said the qube does not exist (it vanished, or never was). */
export function isNotFound(err: unknown): boolean {
  return err instanceof QubesdError && err.errorClass === NOT_FOUND;
}

/** A reply as `Qubesd.reply` gives it: the text, or the exception qubesd raised. */
export type QubesdReply = { readonly ok: true; readonly text: string } | { readonly ok: false; readonly errorClass: string; readonly message: string };

/** A wire result as a reply: its text, or its exception (a connection closed without one named ConnectionClosed). */
function asReply(result: QubesdResult): QubesdReply {
  return result.ok ? { ok: true, text: result.data.toString('utf8') } : { ok: false, errorClass: result.errorClass || 'ConnectionClosed', message: result.message };
}

/** The QubesdError an exception reply stands for. */
export function replyError(reply: { readonly errorClass: string; readonly message: string }): QubesdError {
  return new QubesdError(reply.errorClass, reply.message);
}

/** One line of `admin.vm.List`. */
export interface ListedQube {
  readonly klass: string;
  readonly state: string;
  readonly uuid: string;
}

/** `admin.vm.List`'s reply: `NAME class=C state=S uuid=U` a line. */
export function parseList(text: string): Map<string, ListedQube> {
  const out = new Map<string, ListedQube>();
  for (const line of text.split('\n')) {
    const [name, ...fields] = line.split(' ');
    if (!name) continue;
    let klass = '';
    let state = '';
    let uuid = '';
    for (const f of fields) {
      const eq = f.indexOf('=');
      if (eq < 0) continue;
      const key = f.slice(0, eq);
      const value = f.slice(eq + 1);
      if (key === 'class') klass = value;
      else if (key === 'state') state = value;
      else if (key === 'uuid') uuid = value;
    }
    out.set(name, { klass, state, uuid });
  }
  return out;
}

/** `admin.vm.tag.List`'s reply: a tag a line. */
export function parseTags(text: string): string[] {
  return text.split('\n').filter((t) => t !== '');
}

/** Facts of one qube as qubesd's system info gives them. */
export interface SystemQube {
  readonly klass: string;
  readonly state: string;
  readonly tags: readonly string[];
}

/**
 * qubesd's internal socket beside its Admin API socket, as qubesd makes them
 * (`/var/run/qubesd.sock`, `/var/run/qubesd.internal.sock`, both group
 * qubes, mode 0660); a stand-in socket `X.sock` has its own `X.internal.sock`.
 */
export function internalSocketOf(socketPath: string): string {
  return socketPath.endsWith('.sock') ? `${socketPath.slice(0, -'.sock'.length)}.internal.sock` : `${socketPath}.internal`;
}

export interface QubesdOptions {
  /** Calls in flight at once; qubesd's listen backlog is small (asyncio's default is 100). */
  readonly concurrency?: number;
  /** Connection attempts for one call when qubesd's backlog is full. */
  readonly connectAttempts?: number;
  /** Told of every retried connect, for the operator's journal. */
  readonly log?: (message: string) => void;
}

const DEFAULT_CONCURRENCY = 8;
const DEFAULT_CONNECT_ATTEMPTS = 8;
const FIRST_BACKOFF_MS = 10;

// A connect qubesd never accepted (its backlog full, or it is restarting): the call did not
// reach it, so a retry is safe for any method.
const NOT_ACCEPTED = new Set(['EAGAIN', 'EWOULDBLOCK', 'ECONNREFUSED', 'ENOENT']);

/** The Admin API as dom0 code uses it: every call made as dom0 on qubesd's socket. */
export class Qubesd {
  private readonly limit: number;
  private readonly attempts: number;
  private inFlight = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(
    readonly socketPath: string,
    private readonly options: QubesdOptions = {},
  ) {
    this.limit = Math.max(1, options.concurrency ?? DEFAULT_CONCURRENCY);
    this.attempts = Math.max(1, options.connectAttempts ?? DEFAULT_CONNECT_ATTEMPTS);
  }

  /** One call; resolves to the reply's text, throws QubesdError on an exception reply. */
  async call(method: string, dest: string, arg = '', payload?: string | Buffer): Promise<string> {
    const reply = await this.reply(method, dest, arg, payload);
    if (reply.ok) return reply.text;
    throw replyError(reply);
  }

  /**
   * One call whose exception reply is returned, not thrown: where "no such
   * qube" is an answer (a named read), it then costs what a found qube does.
   */
  async reply(method: string, dest: string, arg = '', payload?: string | Buffer): Promise<QubesdReply> {
    return asReply(await this.send({ method, dest, arg, ...(payload === undefined ? {} : { payload }) }));
  }

  /**
   * `admin.vm.List` as dom0: every qube, or with `qube` just that one, with
   * its class, power state and uuid.
   */
  async list(qube = 'dom0'): Promise<Map<string, ListedQube>> {
    return parseList(await this.call('admin.vm.List', qube));
  }

  /**
   * `internal.GetSystemInfo` on qubesd's internal socket: every qube with its
   * class, power state and tags, from one call that qubesd answers from one
   * state (the qrexec policy daemon's own view of the machine).
   */
  async systemInfo(): Promise<Map<string, SystemQube>> {
    const reply = asReply(await this.send({ method: 'internal.GetSystemInfo', dest: 'dom0' }, internalSocketOf(this.socketPath)));
    if (!reply.ok) throw replyError(reply);
    const out = new Map<string, SystemQube>();
    let domains: unknown;
    try {
      domains = (JSON.parse(reply.text) as { domains?: unknown }).domains;
    } catch {
      domains = undefined;
    }
    if (typeof domains !== 'object' || domains === null) throw new QubesdError('ProtocolError', 'unexpected system info');
    for (const [name, d] of Object.entries(domains as Record<string, { type?: unknown; power_state?: unknown; tags?: unknown }>)) {
      const tags = d?.tags;
      if (typeof d?.type !== 'string' || typeof d.power_state !== 'string' || !Array.isArray(tags) || !tags.every((t) => typeof t === 'string')) {
        throw new QubesdError('ProtocolError', 'unexpected system info');
      }
      out.set(name, { klass: d.type, state: d.power_state, tags: tags as string[] });
    }
    return out;
  }

  async tags(qube: string): Promise<string[]> {
    return parseTags(await this.call('admin.vm.tag.List', qube));
  }

  /** A property's value, or null when it is None/empty. */
  async property(qube: string, name: string): Promise<{ isDefault: boolean; type: string; value: string }> {
    const text = await this.call('admin.vm.property.Get', qube, name);
    const m = /^default=(True|False) type=(\S+) ?(.*)$/s.exec(text);
    if (!m) throw new QubesdError('ProtocolError', `unexpected property reply for ${name}`);
    return { isDefault: m[1] === 'True', type: m[2] as string, value: m[3] as string };
  }

  private async send(call: QubesdCall, socketPath = this.socketPath): Promise<QubesdResult> {
    await this.acquire();
    try {
      for (let attempt = 1; ; attempt++) {
        try {
          return await qubesdCall(socketPath, call);
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code ?? '';
          if (!NOT_ACCEPTED.has(code) || attempt >= this.attempts) throw err;
          this.options.log?.(`qubesd connect ${code} for ${call.method}; retry ${attempt}`);
          await new Promise((r) => setTimeout(r, FIRST_BACKOFF_MS * 2 ** (attempt - 1)));
        }
      }
    } finally {
      this.release();
    }
  }

  private async acquire(): Promise<void> {
    if (this.inFlight < this.limit) {
      this.inFlight++;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  private release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.inFlight--;
  }
}

/**
 * `fn` over each qube, all through the client's bounded calls; a qube that
 * vanished meanwhile (qubesd says it does not exist) is left out, as if the
 * listing had been taken a moment later. Results keep the input order.
 */
export async function eachQube<R>(names: readonly string[], fn: (name: string) => Promise<R>): Promise<Map<string, R>> {
  const results = await Promise.all(
    names.map(async (name): Promise<[string, R] | null> => {
      try {
        return [name, await fn(name)];
      } catch (err) {
        if (isNotFound(err)) return null;
        throw err;
      }
    }),
  );
  return new Map(results.filter((r): r is [string, R] => r !== null));
}
