/**
 * The Admin API wire format spoken on qubesd's Unix socket.
 *
 * Request: `METHOD[+ARG] SP SRC SP DESTTYPE SP DEST NUL PAYLOAD`, ended by the
 * caller's half-close. Replies start with a two-byte header: `0\0` data,
 * `1\0` event, `2\0` exception.
 */
import { QmcpError } from '../errors.js';

/** Largest request (header and payload) qubesd accepts before aborting. */
export const MAX_REQUEST_BYTES = 65536;

export interface AdminRequest {
  readonly method: string;
  /** The argument after the first `+`; empty when absent. */
  readonly arg: string;
  readonly src: Buffer;
  readonly dest: Buffer;
  readonly payload: Buffer;
}

/** Raised for a request qubesd would drop with no reply at all. */
export class FramingError extends QmcpError {
  readonly code = 'ERR_QMCP_ADMINAPI_FRAMING';
}

/**
 * Splits a complete request as qubesd does; throws FramingError when qubesd
 * would abort the connection without a byte.
 */
export function parseRequest(buf: Buffer): AdminRequest {
  const nul = buf.indexOf(0);
  if (nul < 0) throw new FramingError('no NUL after the header');
  const header = buf.subarray(0, nul);
  const payload = buf.subarray(nul + 1);
  const fields = splitSpaces(header, 3);
  if (fields.length < 4) throw new FramingError('header has fewer than 4 fields');
  const [methArg, src, destTypeRaw, destRaw] = fields as [Buffer, Buffer, Buffer, Buffer];
  let destType = destTypeRaw.toString('latin1');
  let dest = destRaw;
  if (destType === 'keyword' && dest.toString('latin1') === 'adminvm') {
    destType = 'name';
    dest = Buffer.from('dom0');
  }
  if (destType !== 'name') throw new FramingError(`destination type ${destType} not supported`);
  const plus = methArg.indexOf(0x2b);
  const method = plus < 0 ? methArg : methArg.subarray(0, plus);
  const arg = plus < 0 ? Buffer.alloc(0) : methArg.subarray(plus + 1);
  if (!isAscii(method) || !isAscii(arg)) throw new FramingError('non-ASCII method or argument');
  return { method: method.toString('latin1'), arg: arg.toString('latin1'), src, dest, payload };
}

/** Python's bytes.split(b' ', maxsplit): empty fields are kept. */
function splitSpaces(buf: Buffer, maxsplit: number): Buffer[] {
  const out: Buffer[] = [];
  let start = 0;
  while (out.length < maxsplit) {
    const sp = buf.indexOf(0x20, start);
    if (sp < 0) break;
    out.push(buf.subarray(start, sp));
    start = sp + 1;
  }
  out.push(buf.subarray(start));
  return out;
}

export function isAscii(buf: Buffer): boolean {
  for (const b of buf) if (b > 0x7f) return false;
  return true;
}

/** Builds a request the way qubesadmin does (it always sends the `+`). */
export function encodeRequest(req: {
  method: string;
  arg?: string;
  src?: string;
  destType?: 'name' | 'keyword';
  dest: string;
  payload?: Buffer | string;
}): Buffer {
  const head = `${req.method}+${req.arg ?? ''} ${req.src ?? 'dom0'} ${req.destType ?? 'name'} ${req.dest}\0`;
  const payload = req.payload === undefined ? Buffer.alloc(0) : Buffer.from(req.payload);
  return Buffer.concat([Buffer.from(head, 'latin1'), payload]);
}

export function encodeOk(data?: string | Buffer | null): Buffer {
  const body = data === undefined || data === null ? Buffer.alloc(0) : Buffer.from(data);
  return Buffer.concat([Buffer.from('0\0', 'latin1'), body]);
}

export function encodeException(className: string, message: string): Buffer {
  return Buffer.concat([
    Buffer.from(`2\0${className}\0\0`, 'latin1'),
    Buffer.from(message, 'utf8'),
    Buffer.from('\0', 'latin1'),
  ]);
}

/** An event's kwargs, in firing order; values already rendered as Python's str(). */
export type EventKwargs = ReadonlyArray<readonly [string, string]>;

export interface AdminEvent {
  /** The qube's name, or '' for app-level events. */
  readonly subject: string;
  readonly event: string;
  readonly kwargs: EventKwargs;
}

export function encodeEvent(ev: AdminEvent): Buffer {
  let s = `1\0${ev.subject}\0${ev.event}\0`;
  for (const [k, v] of ev.kwargs) s += `${k}\0${v}\0`;
  s += '\0';
  // qubesd encodes events as ASCII; anything else would make it fail.
  return Buffer.from([...s].map((c) => (c.charCodeAt(0) > 0x7f ? '?' : c)).join(''), 'latin1');
}

export type AdminReply =
  | { readonly ok: true; readonly data: Buffer }
  | { readonly ok: false; readonly errorClass: string; readonly traceback: string; readonly message: string };

/** Parses a complete non-event reply; returns null for an empty or malformed one. */
export function parseReply(buf: Buffer): AdminReply | null {
  if (buf.length < 2 || buf[1] !== 0) return null;
  if (buf[0] === 0x30) return { ok: true, data: buf.subarray(2) };
  if (buf[0] === 0x32) {
    const parts = buf.subarray(2).toString('utf8').split('\0');
    if (parts.length < 4) return null;
    return { ok: false, errorClass: parts[0] ?? '', traceback: parts[1] ?? '', message: parts[2] ?? '' };
  }
  return null;
}

/**
 * Incremental parser of an event stream: feed chunks, get whole events.
 * Throws on bytes that are not an event message.
 */
export class EventStreamParser {
  private pending: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): AdminEvent[] {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const out: AdminEvent[] = [];
    for (;;) {
      const ev = this.takeOne();
      if (!ev) break;
      out.push(ev);
    }
    return out;
  }

  /** True when bytes of an unfinished message are buffered. */
  get hasPartial(): boolean {
    return this.pending.length > 0;
  }

  /** The buffered bytes, e.g. an exception reply that ended the stream. */
  get rest(): Buffer {
    return this.pending;
  }

  private takeOne(): AdminEvent | null {
    const buf = this.pending;
    if (buf.length < 2) return null;
    if (buf[0] !== 0x31 || buf[1] !== 0) {
      if (buf[0] === 0x32 || buf[0] === 0x30) return null;
      throw new Error('not an event message');
    }
    const fields: string[] = [];
    let pos = 2;
    for (;;) {
      const nul = buf.indexOf(0, pos);
      if (nul < 0) return null;
      const field = buf.subarray(pos, nul).toString('latin1');
      pos = nul + 1;
      // subject and event name, then key/value pairs until an empty key
      if (fields.length >= 2 && fields.length % 2 === 0 && field === '') break;
      fields.push(field);
    }
    this.pending = buf.subarray(pos);
    const kwargs: [string, string][] = [];
    for (let i = 2; i + 1 < fields.length; i += 2) kwargs.push([fields[i] ?? '', fields[i + 1] ?? '']);
    return { subject: fields[0] ?? '', event: fields[1] ?? '', kwargs };
  }
}
