import { userInfo } from 'node:os';
import { createInterface } from 'node:readline';
import { DEFAULT_QUBESD_SOCKET, parseDom0Options, principalsFor, type Dom0Options } from '../args.js';
import type { Command } from '../command.js';
import { UsageError } from '../command.js';
import { Qubesd } from '../../dom0/qubesd.js';
import { AnswerRefused, answerApproval, formatRow, listApprovals, showApproval, watchApprovals } from '../../dom0/operator/approvals.js';
import type { ApprovalOps } from '../../dom0/operator/approvals.js';

const USAGE = `usage: qmcp dom0 approvals list|show ID|allow ID|deny ID|watch [--once] [--principal NAME] [--root DIR] [--qubesd-socket PATH] [--json]

The agent's calls waiting for the operator's approval (docs/action-gate.md).
list shows each request: id, principal, operation, qubes, age, when it
lapses, and its state (pending, answered, expired, or stale when the
service that asked is gone). show ID describes the call in plain language
from the live state. allow ID and deny ID answer it. watch shows each new
request and asks allow? [y/N] on the terminal, one at a time, until end of
input or Ctrl-C (--once: after one answer). The store is under DIR
(default /), qubesd at PATH (default ${DEFAULT_QUBESD_SOCKET}).
allow refuses a request made under other settings or another model (the
service would refuse it after the approval): deny it, and the agent must
ask again. Each request is described and checked with the settings of the
principal that made it; --principal NAME covers NAME's requests alone.
Exit 0 done, 1 refused (unknown, stale, expired, already answered, or
made under other settings), 2 usage.`;

interface Parsed extends Dom0Options {
  readonly once: boolean;
}

function parse(args: string[]): Parsed {
  const { extra, ...options } = parseDom0Options(args, USAGE, { once: { type: 'boolean' } });
  return { ...options, once: extra.once ?? false };
}

function ops(p: Parsed): ApprovalOps {
  const [principal] = p.principal === undefined ? [] : principalsFor(p);
  return { root: p.root, qubesd: new Qubesd(p.socket), now: () => new Date(), ...(principal !== undefined ? { principal } : {}) };
}

function out(lines: readonly string[]): void {
  for (const line of lines) process.stdout.write(line + '\n');
}

/** The operator answering, by their dom0 user name. */
function operatorName(): string {
  try {
    return userInfo().username;
  } catch {
    return process.env['USER'] ?? 'unknown';
  }
}

/** Questions on the terminal; null once input ends. `onEnd` runs once input has ended and every line typed ahead is used. */
function terminal(onEnd: () => void): { ask: (q: string) => Promise<boolean | null>; close: () => void } {
  const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: process.stdin.isTTY === true });
  const lines: string[] = [];
  const waiting: ((line: string | null) => void)[] = [];
  let ended = false;
  rl.on('line', (line) => {
    const w = waiting.shift();
    if (w) w(line);
    else lines.push(line);
  });
  rl.on('close', () => {
    ended = true;
    for (const w of waiting.splice(0)) w(null);
    if (lines.length === 0) onEnd();
  });
  return {
    ask: async (q) => {
      process.stdout.write(q);
      const line = lines.shift() ?? (ended ? null : await new Promise<string | null>((resolve) => waiting.push(resolve)));
      if (ended && lines.length === 0) onEnd();
      return line === null ? null : /^\s*y(es)?\s*$/i.test(line);
    },
    close: () => rl.close(),
  };
}

async function answer(p: Parsed, id: string, decision: 'allow' | 'deny'): Promise<number> {
  try {
    await answerApproval(ops(p), id, decision, operatorName(), 'cli');
  } catch (err) {
    if (!(err instanceof AnswerRefused)) throw err;
    if (p.json) out([JSON.stringify({ refused: err.reason })]);
    process.stderr.write(`qmcp: ${decision} ${id} refused: ${err.message}\n`);
    return 1;
  }
  out([p.json ? JSON.stringify({ [decision === 'allow' ? 'allowed' : 'denied']: id }) : `${decision === 'allow' ? 'allowed' : 'denied'} ${id}`]);
  return 0;
}

export const approvalsCommand: Command = {
  path: ['dom0', 'approvals'],
  summary: 'see and answer the agent calls waiting for approval (list | show ID | allow ID | deny ID | watch)',
  usage: USAGE,
  async run(args) {
    const p = parse(args);
    const [verb, ...rest] = p.positionals;
    if (verb === 'list' && rest.length === 0) {
      const rows = await listApprovals(ops(p));
      if (p.json) out([JSON.stringify(rows)]);
      else out(rows.length === 0 ? ['no requests'] : rows.map(formatRow));
      return 0;
    }
    if (verb === 'show' && rest.length === 1) {
      const lines = await showApproval(ops(p), rest[0] as string);
      if (lines === null) {
        process.stderr.write(`qmcp: no such request\n`);
        return 1;
      }
      out(p.json ? [JSON.stringify(lines)] : lines);
      return 0;
    }
    if ((verb === 'allow' || verb === 'deny') && rest.length === 1) return answer(p, rest[0] as string, verb);
    if (verb === 'watch' && rest.length === 0) {
      const stop = new AbortController();
      const onInt = (): void => stop.abort();
      process.once('SIGINT', onInt);
      const tty = terminal(onInt);
      stop.signal.addEventListener('abort', () => tty.close(), { once: true });
      try {
        out([`watching for requests under ${p.root} (Ctrl-C to stop)`]);
        await watchApprovals(ops(p), { print: out, ask: tty.ask, signal: stop.signal, by: operatorName(), once: p.once });
      } finally {
        process.off('SIGINT', onInt);
        tty.close();
      }
      return 0;
    }
    throw new UsageError(USAGE);
  },
};
