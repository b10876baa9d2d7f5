/** `qmcp sim ask list|allow ID [--target T]|deny ID --dir DIR`: the operator's answers to `ask` rules. */
import { resolve } from 'node:path';
import type { Command } from '../command.js';
import { UsageError } from '../command.js';
import { parseCli } from '../args.js';
import type { AskControlReply, AskControlRequest } from '../../sim/qrexec/asks.js';
import { askControl } from '../../sim/qrexec/asks.js';
import { DEFAULT_ASK_TIMEOUT_MS, routerPaths } from '../../sim/qrexec/router.js';

const USAGE = `usage: qmcp sim ask --dir DIR list | allow ID [--target T] | deny ID

Answers the qrexec calls that wait for the operator because a policy rule
says ask, on the simulated host running at DIR. list prints one per line:
its ID, source -> target, the service and argument, the targets the rule
offers and its default. allow ID lets the call go on, to T (one of those
targets) or the default; deny ID refuses it. Qubes' dialog shows the
source, the service and argument and the targets, not the requested target,
which list adds. A call nobody answers is refused after
${DEFAULT_ASK_TIMEOUT_MS / 60_000} minutes (Qubes' dialog waits for ever). Exit 0 done, 1 no host answering at DIR or the
answer refused (no such ID, T not offered), 2 usage.`;

function parseArgs(args: string[]): { dir: string; req: AskControlRequest } {
  const { values, positionals: positional } = parseCli(args, { dir: { type: 'string' }, target: { type: 'string' } });
  const { dir, target } = values;
  if (!dir) throw new UsageError('--dir DIR is required');
  const [op, id, ...extra] = positional;
  if (extra.length > 0) throw new UsageError(`unexpected argument: ${extra[0]}`);
  let req: AskControlRequest;
  if (op === 'list' && id === undefined && target === undefined) req = { op: 'list' };
  else if (op === 'allow' && id !== undefined) req = target === undefined ? { op: 'allow', id } : { op: 'allow', id, target };
  else if (op === 'deny' && id !== undefined && target === undefined) req = { op: 'deny', id };
  else throw new UsageError('expected: list | allow ID [--target T] | deny ID');
  return { dir: resolve(dir), req };
}

export const simAskCommand: Command = {
  path: ['sim', 'ask'],
  summary: 'list or answer qrexec calls waiting for the operator (list | allow ID [--target T] | deny ID)',
  usage: USAGE,
  async run(argv: string[]): Promise<number> {
    const { dir, req } = parseArgs(argv);
    let reply: AskControlReply;
    try {
      reply = await askControl(routerPaths(dir).askSocket, req);
    } catch (e) {
      console.error(`qmcp sim ask: cannot reach the simulator at ${dir}: ${(e as Error).message}`);
      return 1;
    }
    if (!reply.ok) {
      console.error(`qmcp sim ask: ${reply.error}`);
      return 1;
    }
    if (req.op === 'list') {
      for (const q of reply.asks ?? []) {
        const arg = q.argument === '' ? '' : `+${q.argument}`;
        const def = q.defaultTarget === null ? '' : ` default=${q.defaultTarget}`;
        console.log(`${q.id}\t${q.source} -> ${q.target || '@default'}\t${q.service}${arg}\ttargets=${q.targets.join(',')}${def}`);
      }
    } else if (req.op === 'allow') {
      console.log(`allowed ${req.id} to ${reply.target ?? ''}`);
    } else {
      console.log(`denied ${req.id}`);
    }
    return 0;
  },
};
