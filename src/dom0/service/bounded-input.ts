import type { Readable } from 'node:stream';

/** Limits dom0 puts on what one call may send it (SPEC §4.15). */
export interface InputLimits {
  readonly maxBytes: number;
  readonly deadlineMs: number;
}

/**
 * Reads a whole payload up to the caller's half-close, or gives up: more than
 * maxBytes, or not finished within deadlineMs, resolves to null (a refusal).
 */
export function readBounded(stream: Readable, limits: InputLimits): Promise<Buffer | null> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (value: Buffer | null): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('error', onError);
      if (value === null) stream.destroy();
      resolve(value);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limits.maxBytes) finish(null);
      else chunks.push(chunk);
    };
    const onEnd = (): void => finish(Buffer.concat(chunks, size));
    const onError = (): void => finish(null);
    const timer = setTimeout(() => finish(null), limits.deadlineMs);
    stream.on('data', onData);
    stream.on('end', onEnd);
    stream.on('error', onError);
  });
}
