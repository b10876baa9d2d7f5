import { QmcpError } from '../shared/errors.js';

/** One `qmcp` subcommand: its words, a one-line summary, its usage text and its runner. */
export interface Command {
  /** The words that select it, e.g. ['sim', 'start']. */
  readonly path: readonly string[];
  readonly summary: string;
  /** What `--help` prints: starts with `usage: qmcp WORDS`, then the options and exit statuses. */
  readonly usage: string;
  /** Runs with the arguments after the command words; resolves to the exit status. */
  run(args: string[]): Promise<number>;
}

/** Thrown for a command-line mistake; main prints it with the usage and exits 2. */
export class UsageError extends QmcpError {
  readonly code = 'ERR_QMCP_USAGE';
}
