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
