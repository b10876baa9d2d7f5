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

/** What every dom0 operator command takes besides its words: the dom0 root, qubesd's socket, and JSON output. */
export interface Dom0Options {
  readonly root: string;
  readonly socket: string;
  readonly json: boolean;
  readonly positionals: string[];
}

export const DEFAULT_QUBESD_SOCKET = '/var/run/qubesd.sock';

export function parseDom0Options(args: string[], usage: string): Dom0Options {
  const { values, positionals } = parseCli(args, { root: { type: 'string' }, 'qubesd-socket': { type: 'string' }, json: { type: 'boolean' } }, usage);
  return { root: values.root ?? '/', socket: values['qubesd-socket'] ?? DEFAULT_QUBESD_SOCKET, json: values.json ?? false, positionals };
}
