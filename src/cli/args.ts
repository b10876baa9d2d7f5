import { parseArgs } from 'node:util';
import type { ParseArgsConfig } from 'node:util';
import { UsageError } from './command.js';
import { hasFatal, readPrincipalsFile, settingsPath } from '../shared/model/index.js';

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
  /** --principal: the world a command is about, when the settings hold several. */
  readonly principal: string | undefined;
  readonly positionals: string[];
}

export const DEFAULT_QUBESD_SOCKET = '/var/run/qubesd.sock';

const DOM0_OPTIONS = { root: { type: 'string' }, 'qubesd-socket': { type: 'string' }, json: { type: 'boolean' }, principal: { type: 'string' } } as const;

type Values<O extends Options> = ReturnType<typeof parseCli<O>>['values'];

/** The dom0 options, and a command's own options beside them (their values in `extra`). */
export function parseDom0Options<E extends Options = Record<never, never>>(args: string[], usage: string, extra?: E): Dom0Options & { readonly extra: Values<E> } {
  const { values, positionals } = parseCli(args, { ...extra, ...DOM0_OPTIONS }, usage);
  const dom0 = values as Values<typeof DOM0_OPTIONS>;
  return { root: dom0.root ?? '/', socket: dom0['qubesd-socket'] ?? DEFAULT_QUBESD_SOCKET, json: dom0.json ?? false, principal: dom0.principal, positionals, extra: values as Values<E> };
}

/** The principal qubes the installed settings name, in their order; none when they are unusable. */
export function installedPrincipals(root: string): string[] {
  const { principals, problems } = readPrincipalsFile(settingsPath(root));
  return hasFatal(problems) ? [] : principals.list.map((s) => s.principal);
}

function known(o: Pick<Dom0Options, 'root' | 'principal'>, names: readonly string[]): string | undefined {
  if (o.principal !== undefined && names.length > 0 && !names.includes(o.principal)) throw new UsageError(`--principal ${o.principal}: no such principal; the settings name ${names.join(', ')}`);
  return o.principal;
}

/**
 * The principal a command about one world serves: --principal, or the only
 * one installed. Unusable settings give --principal as it is (the command's
 * own reading then refuses, fail-closed).
 */
export function principalFor(o: Pick<Dom0Options, 'root' | 'principal'>): string | undefined {
  const names = installedPrincipals(o.root);
  if (o.principal === undefined && names.length > 1) throw new UsageError(`the settings hold several principals (${names.join(', ')}): name one with --principal NAME`);
  return known(o, names) ?? names[0];
}

/** The principals a command about the machine covers: --principal's alone, or each installed one (none when unusable). */
export function principalsFor(o: Pick<Dom0Options, 'root' | 'principal'>): string[] {
  const names = installedPrincipals(o.root);
  const one = known(o, names);
  return one !== undefined ? [one] : names;
}
