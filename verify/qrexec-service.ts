/**
 * The qrexec service a call of a model operation names, with its argument
 * (`qmcp.Info+ai-box`). Calls written by hand take the name from the model,
 * so a renamed service cannot leave a check calling one that no longer
 * exists, which every qube would refuse alike and the check would pass.
 */
import { operation } from '../src/shared/model/capabilities.js';
import type { Operation } from '../src/shared/model/capabilities.js';

export function qrexecService(op: Operation | string, argument = ''): string {
  const { service } = typeof op === 'string' ? operation(op) : op;
  return argument === '' ? service : `${service}+${argument}`;
}
