/**
 * Operations the MCP server composes from model operations. Each has its own
 * effect columns (its MCP annotations come from them), but no policy line,
 * dom0 service or tier of its own: every step is one of the operations it
 * lists, checked by dom0 and the policy as that operation. Not part of the
 * model hash, since nothing installed in dom0 depends on them.
 */
import { effects, OPERATIONS, operation, type Operation } from './capabilities.js';

export type Effects = Pick<Operation, 'readOnly' | 'loses' | 'widens' | 'destructive' | 'idempotent' | 'openWorld'>;

export interface Composition extends Effects {
  readonly id: string;
  readonly description: string;
  /** The model operations it is made of, in the order it calls them. */
  readonly operations: readonly string[];
  /** The operation it is listed after, in the docs and the tool list. */
  readonly listedAfter: string;
}

export const COMPOSITIONS: readonly Composition[] = [
  {
    id: 'run.disposable',
    description: 'run one command in a fresh auto-cleanup disposable, then kill it (or remove it if it never started)',
    operations: ['disposable', 'start', 'run', 'kill', 'remove'],
    listedAfter: 'run',
    // it changes and removes only the disposable it made itself, at the template's tier; the command may reach the network
    ...effects({ readOnly: false, idempotent: false }, null, null, true),
  },
];

export function composition(id: string): Composition | undefined {
  return COMPOSITIONS.find((c) => c.id === id);
}

/** The effect columns of an operation or a composition; throws on an unknown id. */
export function effectsOf(id: string, ops: readonly Operation[] = OPERATIONS): Effects {
  return composition(id) ?? operation(id, ops);
}

/** Position in the model's order; a composition sits with the operation it is listed after. */
export function modelRank(id: string, ops: readonly Operation[] = OPERATIONS): number {
  const at = composition(id)?.listedAfter ?? id;
  return ops.findIndex((o) => o.id === at);
}

const yes = (b: boolean): string => (b ? 'yes' : 'no');

/** The docs section listing the compositions. */
export function compositionLines(): string[] {
  const L = ['## Composed operations', ''];
  L.push('The MCP server builds these from the operations above; dom0 and the policy check each step as that operation, so they add no authority.');
  L.push('');
  L.push('| operation | what | made of | read-only | destructive | idempotent | open-world |');
  L.push('| --- | --- | --- | --- | --- | --- | --- |');
  for (const c of COMPOSITIONS) {
    L.push(`| \`${c.id}\` | ${c.description} | ${c.operations.map((o) => `\`${o}\``).join(', ')} | ${yes(c.readOnly)} | ${yes(c.destructive)} | ${yes(c.idempotent)} | ${yes(c.openWorld)} |`);
  }
  L.push('');
  return L;
}
