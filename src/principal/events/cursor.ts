/**
 * Opaque cursors: base64url of a stream id, the number of items delivered on
 * that stream, and an HMAC under a key that lives only in this process, so a
 * forged, edited or foreign cursor is told apart from a real one. The count
 * covers only what the stream delivered: nothing about activity elsewhere.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

const ID_BYTES = 16;
const COUNT_BYTES = 8;
const MAC_BYTES = 16;
const CURSOR_BYTES = ID_BYTES + COUNT_BYTES + MAC_BYTES;

export interface CursorPosition {
  /** The stream id, hex. */
  readonly stream: string;
  /** Items delivered on that stream before this cursor. */
  readonly count: number;
}

export class CursorCodec {
  private readonly key: Buffer;

  constructor(key: Buffer = randomBytes(32)) {
    this.key = key;
  }

  static newStreamId(): string {
    return randomBytes(ID_BYTES).toString('hex');
  }

  encode(position: CursorPosition): string {
    const body = Buffer.alloc(ID_BYTES + COUNT_BYTES);
    Buffer.from(position.stream, 'hex').copy(body, 0);
    body.writeBigUInt64BE(BigInt(position.count), ID_BYTES);
    return Buffer.concat([body, this.mac(body)]).toString('base64url');
  }

  /** The position a cursor names, or null when it is not one of ours. */
  decode(cursor: string): CursorPosition | null {
    if (!/^[A-Za-z0-9_-]{1,128}$/.test(cursor)) return null;
    const raw = Buffer.from(cursor, 'base64url');
    if (raw.length !== CURSOR_BYTES || raw.toString('base64url') !== cursor) return null;
    const body = raw.subarray(0, ID_BYTES + COUNT_BYTES);
    if (!timingSafeEqual(raw.subarray(ID_BYTES + COUNT_BYTES), this.mac(body))) return null;
    const count = body.readBigUInt64BE(ID_BYTES);
    if (count > BigInt(Number.MAX_SAFE_INTEGER)) return null;
    return { stream: body.subarray(0, ID_BYTES).toString('hex'), count: Number(count) };
  }

  private mac(body: Buffer): Buffer {
    return createHmac('sha256', this.key).update(body).digest().subarray(0, MAC_BYTES);
  }
}
