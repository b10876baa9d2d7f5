/**
 * How a dom0 service served from a socket tells its caller how the call
 * ended. qrexec reports status 0 for every socket service and carries no
 * stderr, so the resident service ends its stdout with a NUL and the status
 * the executable would have exited with. Service output is JSON text, which
 * never holds a raw NUL, so the trailer cannot be confused with it.
 */

/** The trailer that ends a socket service's reply: NUL, then the status in decimal. */
export function statusTrailer(status: number): Buffer {
  return Buffer.from(`\0${status}`, 'latin1');
}

/** The status of a refusal, as qrexec exits for a denied call. */
export const REFUSAL_STATUS = 126;

/**
 * The one refusal of a socket-served dom0 service: these bytes and nothing
 * else, exit 0, whatever the reason. Not the policy's refusal (exit 126 and
 * `Request refused` on stderr), which qrexec gives before any service runs:
 * the byte-identical refusal is per way of serving.
 */
export const REFUSAL_REPLY: Buffer = statusTrailer(REFUSAL_STATUS);

export interface DecodedReply {
  readonly status: number;
  /** The reply without its trailer: what the executable would have written to stdout. */
  readonly stdout: Buffer;
}

const MAX_STATUS_DIGITS = 3;

/** A socket service's reply split into stdout and status; null when it does not end with a trailer. */
export function decodeReply(reply: Buffer): DecodedReply | null {
  const nul = reply.lastIndexOf(0);
  if (nul < 0) return null;
  const digits = reply.subarray(nul + 1).toString('latin1');
  if (digits.length === 0 || digits.length > MAX_STATUS_DIGITS || !/^(0|[1-9][0-9]*)$/.test(digits)) return null;
  const status = Number(digits);
  if (status > 255) return null;
  return { status, stdout: reply.subarray(0, nul) };
}
