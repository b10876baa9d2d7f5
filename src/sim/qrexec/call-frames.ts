/** The router's side of one call's connection: the header, stdin frames in, output frames out. */
import type { Socket } from 'node:net';
import type { PassThrough } from 'node:stream';
import { Writable } from 'node:stream';
import type { CallHeader } from './protocol.js';
import { FRAME_STDIN, FrameParser, MAX_HEADER_BYTES, MAX_STDIN_FRAME, encodeFrame } from './protocol.js';

const LINGER_MS = 2000;

/** Reads the length-prefixed request header; the bytes after it are the start of stdin. */
export function readHeader(sock: Socket): Promise<{ header: CallHeader; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      buf = Buffer.concat([buf, chunk]);
      if (buf.length < 4) return;
      const len = buf.readUInt32BE(0);
      if (len > MAX_HEADER_BYTES) return fail(new Error('header too long'));
      if (buf.length < 4 + len) return;
      cleanup();
      sock.pause();
      try {
        const h = JSON.parse(buf.subarray(4, 4 + len).toString('utf8')) as Partial<CallHeader>;
        if (typeof h.target !== 'string' || typeof h.service !== 'string' || h.service === '') throw new Error('bad header');
        resolve({ header: { target: h.target, service: h.service }, rest: buf.subarray(4 + len) });
      } catch (e) {
        reject(e as Error);
      }
    };
    const onEnd = (): void => fail(new Error('closed before the header'));
    const fail = (e: Error): void => {
      cleanup();
      reject(e);
    };
    const cleanup = (): void => {
      sock.off('data', onData);
      sock.off('end', onEnd);
    };
    sock.on('data', onData);
    sock.on('end', onEnd);
  });
}

/**
 * Feeds the caller's stdin frames into `stdin`, ending it at the empty frame;
 * a malformed or oversized frame cuts the caller off. Returns how to stop.
 */
export function readStdin(sock: Socket, rest: Buffer, stdin: PassThrough): () => void {
  const parser = new FrameParser(MAX_STDIN_FRAME);
  const onData = (chunk: Buffer): void => {
    let frames;
    try {
      frames = parser.push(chunk);
    } catch {
      sock.destroy();
      return;
    }
    for (const f of frames) {
      if (f.type !== FRAME_STDIN || stdin.writableEnded) continue;
      if (f.data.length === 0) stdin.end();
      else if (!stdin.write(f.data)) {
        sock.pause();
        stdin.once('drain', () => sock.resume());
      }
    }
  };
  sock.on('data', onData);
  if (rest.length > 0) onData(rest);
  sock.resume();
  return () => {
    sock.off('data', onData);
  };
}

/** A Writable that wraps each chunk in a frame of `type` on the caller's socket. */
export function frameWriter(sock: Socket, type: number): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, cb) {
      if (sock.destroyed || sock.writableEnded) return cb();
      sock.write(encodeFrame(type, chunk), () => cb());
    },
  });
}

/** Passes writes on to `to` until `gone`, then closes: the writer's side sees the close. */
export function shutWhenGone(to: Writable, gone: AbortSignal): Writable {
  const w = new Writable({
    write(chunk: Buffer, _enc, cb) {
      to.write(chunk, () => cb());
    },
  });
  if (gone.aborted) w.destroy();
  else gone.addEventListener('abort', () => w.destroy(), { once: true });
  return w;
}

/** Sends the last frame; a caller that does not close its side is cut off shortly after. */
export function finishCall(sock: Socket, last: Buffer): void {
  if (sock.destroyed) return;
  sock.end(last);
  setTimeout(() => sock.destroy(), LINGER_MS).unref();
}
