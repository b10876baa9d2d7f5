import { dom0Commands } from './commands/dom0.js';
import { dispatch } from './dispatch.js';
import { VERSION } from './version.js';

/** qmcp in dom0: the operator commands only. */
export function main(argv: string[]): Promise<number> {
  return dispatch(dom0Commands, argv, VERSION);
}
