import type { Command } from './command.js';
import { UsageError } from './command.js';

function usage(commands: readonly Command[]): string {
  const rows = commands.map((c) => `  qmcp ${c.path.join(' ').padEnd(22)} ${c.summary}`);
  return ['usage: qmcp COMMAND [ARGS]', '', 'commands:', ...rows].join('\n');
}

/** The command whose path is the longest prefix of argv. */
function select(commands: readonly Command[], argv: string[]): { command: Command; rest: string[] } | undefined {
  let best: Command | undefined;
  for (const c of commands) {
    const matches = c.path.every((word, i) => argv[i] === word);
    if (matches && (!best || c.path.length > best.path.length)) best = c;
  }
  return best ? { command: best, rest: argv.slice(best.path.length) } : undefined;
}

/** Runs one of `commands` as argv says and resolves to its exit status (2 for usage errors). */
export async function dispatch(commands: readonly Command[], argv: string[]): Promise<number> {
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    console.log(usage(commands));
    return argv.length === 0 ? 2 : 0;
  }
  const found = select(commands, argv);
  if (!found) {
    console.error(`qmcp: unknown command: ${argv.join(' ')}\n\n${usage(commands)}`);
    return 2;
  }
  try {
    return await found.command.run(found.rest);
  } catch (err) {
    if (err instanceof UsageError) {
      console.error(`qmcp ${found.command.path.join(' ')}: ${err.message}`);
      return 2;
    }
    throw err;
  }
}
