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

const DOM0_OPTIONS = { root: { type: 'string' }, 'qubesd-socket': { type: 'string' }, json: { type: 'boolean' } } as const;

type Values<O extends Options> = ReturnType<typeof parseCli<O>>['values'];

/** The dom0 options, and a command's own options beside them (their values in `extra`). */
export function parseDom0Options<E extends Options = Record<never, never>>(args: string[], usage: string, extra?: E): Dom0Options & { readonly extra: Values<E> } {
  const { values, positionals } = parseCli(args, { ...extra, ...DOM0_OPTIONS }, usage);
  const dom0 = values as Values<typeof DOM0_OPTIONS>;
  return { root: dom0.root ?? '/', socket: dom0['qubesd-socket'] ?? DEFAULT_QUBESD_SOCKET, json: dom0.json ?? false, positionals, extra: values as Values<E> };
}
