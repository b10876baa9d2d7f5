/**
 * The framing between a qrexec client and the simulated router.
 *
 * Request: a 4-byte big-endian length, then that many bytes of JSON
 * `{"target","service"}`; after it the caller's stdin in stdin frames, an
 * empty one for its end. Response: frames of a type byte, a 4-byte
 * big-endian length and the data; the last is an exit frame (a 4-byte signed
 * status) or a refusal. As over qrexec's vchan, the end of stdin travels in
 * band and the connection stays open until the call is over, so a connection
 * that closes earlier is a caller that went away.
 * Node stdlib only: the drop-in qrexec-client-vm loads this.
 */

/** Longest request header accepted; a qrexec service name and target are far shorter. */
export const MAX_HEADER_BYTES = 4096;

export const FRAME_STDOUT = 1;
export const FRAME_STDERR = 2;
export const FRAME_EXIT = 3;
/** The call was refused; the client prints what qrexec-client-vm prints and exits 126. */
export const FRAME_REFUSED = 4;
/** Caller to router: stdin bytes; an empty frame ends stdin. */
export const FRAME_STDIN = 5;
/** Largest stdin frame; the router cuts off a caller that sends a longer one. */
export const MAX_STDIN_FRAME = 64 * 1024;

export const EXIT_REFUSED = 126;
export const EXIT_NO_SERVICE = 127;
export const EXIT_PROBLEM = 125;

export interface CallHeader {
  target: string;
  service: string;
}

export function encodeHeader(h: CallHeader): Buffer {
  const body = Buffer.from(JSON.stringify({ target: h.target, service: h.service }), 'utf8');
  if (body.length > MAX_HEADER_BYTES) throw new RangeError('qrexec request header too long');
  const len = Buffer.alloc(4);
  len.writeUInt32BE(body.length);
  return Buffer.concat([len, body]);
}

export function encodeFrame(type: number, data: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt8(type, 0);
  head.writeUInt32BE(data.length, 1);
  return Buffer.concat([head, data]);
}

export function encodeExit(status: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(status);
  return encodeFrame(FRAME_EXIT, b);
}

export interface Frame {
  type: number;
  data: Buffer;
}

/** Splits a stream into frames as bytes arrive. */
export class FrameParser {
  private buf: Buffer = Buffer.alloc(0);

  /** `maxFrame` bounds what one frame may declare, for a stream from an untrusted side. */
  constructor(private readonly maxFrame = Infinity) {}

  /** Throws a RangeError on a frame longer than `maxFrame`. */
  push(chunk: Buffer): Frame[] {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const out: Frame[] = [];
    while (this.buf.length >= 5) {
      const len = this.buf.readUInt32BE(1);
      if (len > this.maxFrame) throw new RangeError('frame too long');
      if (this.buf.length < 5 + len) break;
      out.push({ type: this.buf.readUInt8(0), data: this.buf.subarray(5, 5 + len) });
      this.buf = this.buf.subarray(5 + len);
    }
    return out;
  }

  /** Bytes of an incomplete frame still held. */
  get pending(): number {
    return this.buf.length;
  }
}
