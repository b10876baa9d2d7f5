import { parseArgs } from 'node:util';
import type { ParseArgsConfig } from 'node:util';
import { UsageError } from './command.js';

type Options = NonNullable<ParseArgsConfig['options']>;

/** Node's own option parser, strict, with its complaints turned into usage errors (exit 2). */
export function parseCli<O extends Options>(args: string[], options: O, usage?: string) {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(usage ? `${(err as Error).message}\n${usage}` : (err as Error).message);
  }
}
