import { commands } from './commands/index.js';
import { dispatch } from './dispatch.js';
import { VERSION } from './version.js';

/** Runs the qmcp command line and resolves to its exit status. */
export function main(argv: string[]): Promise<number> {
  return dispatch(commands, argv, VERSION);
}
