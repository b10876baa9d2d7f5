/**
 * The base of every error qmcp raises on purpose. `code` is stable across
 * versions, so callers switch on it rather than on messages; `name` is the
 * class's own name.
 */
export abstract class QmcpError extends Error {
  abstract readonly code: string;

  constructor(message?: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

/**
 * A QmcpError that stands for an answer, not a fault (qubesd saying a qube
 * does not exist): it carries no stack. Capturing one takes microseconds
 * that grow with the caller's depth, and where an answer decides a refusal
 * its cost must not tell one answer from another.
 */
export abstract class QmcpAnswerError extends QmcpError {
  constructor(message?: string, options?: ErrorOptions) {
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    try {
      super(message, options);
    } finally {
      Error.stackTraceLimit = limit;
    }
  }
}
