// Framing between the host and the agent inside a running qube: one pipe
// carries every channel (a command, a volume import or export), and each
// channel's data in either direction is credit-limited so that one slow
// reader stalls only its own channel. The host treats whatever the agent
// sends as untrusted: the agent runs inside the qube, as the qube's root.
import { QmcpError } from '../../shared/errors.js';

/** Frame types; host → agent below 16, agent → host from 16. */
export const F = {
  OPEN: 1,
  IN: 2,
  IN_EOF: 3,
  SIGNAL: 4,
  ACK_OUT: 5,
  /** The caller went away: close the command's stdout and stderr, so its next write fails. */
  OUT_CLOSE: 6,
  READY: 16,
  OUT: 17,
  ERR: 18,
  ACK_IN: 19,
  EXIT: 20,
} as const;

const HEADER = 9;
/** Largest frame either side accepts. */
export const MAX_FRAME = 1024 * 1024;
/** Data is sent in pieces of at most this. */
export const CHUNK = 64 * 1024;
/** Unacknowledged data bytes a channel may have in flight each way. */
export const WINDOW = 256 * 1024;

export interface Frame {
  readonly type: number;
  readonly id: number;
  readonly payload: Buffer;
}

export function encodeFrame(type: number, id: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const header = Buffer.alloc(HEADER);
  header.writeUInt32BE(payload.length, 0);
  header.writeUInt8(type, 4);
  header.writeUInt32BE(id, 5);
  return Buffer.concat([header, payload]);
}

export function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n, 0);
  return b;
}

export class FrameError extends QmcpError {
  readonly code = 'ERR_QMCP_SANDBOX_FRAME';
}

/** Splits a byte stream into frames; throws FrameError on an oversized one. */
export class FrameReader {
  private chunks: Buffer[] = [];
  private length = 0;

  push(chunk: Buffer): Frame[] {
    this.chunks.push(chunk);
    this.length += chunk.length;
    const frames: Frame[] = [];
    for (;;) {
      if (this.length < HEADER) break;
      const head = this.peek(HEADER);
      const size = head.readUInt32BE(0);
      if (size > MAX_FRAME) throw new FrameError(`frame of ${size} bytes`);
      if (this.length < HEADER + size) break;
      const all = this.take(HEADER + size);
      frames.push({ type: all.readUInt8(4), id: all.readUInt32BE(5), payload: all.subarray(HEADER) });
    }
    return frames;
  }

  private peek(n: number): Buffer {
    if (this.chunks[0] !== undefined && this.chunks[0].length >= n) return this.chunks[0];
    const joined = Buffer.concat(this.chunks);
    this.chunks = [joined];
    return joined;
  }

  private take(n: number): Buffer {
    const joined = this.peek(n);
    this.chunks = joined.length > n ? [joined.subarray(n)] : [];
    this.length -= n;
    return joined.subarray(0, n);
  }
}

/** What a channel ended with. */
export interface ExitInfo {
  readonly code: number | null;
  readonly signal: string | null;
  /** Why a volume import or export failed. */
  readonly message?: string;
}

/** The request that opens a channel. */
export type OpenRequest =
  | {
      readonly kind: 'run';
      readonly argv: readonly string[];
      readonly env: Readonly<Record<string, string>>;
      readonly cwd: string;
      /** Run the first of these that exists in dir (a qrexec service), else end with 127. */
      readonly service?: { readonly dir: string; readonly candidates: readonly string[]; readonly argument: string };
    }
  | { readonly kind: 'import' | 'export'; readonly volume: 'private' | 'root' }
  | { readonly kind: 'boot'; readonly name: string }
  | { readonly kind: 'halt' };
