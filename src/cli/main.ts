import type { Command } from './command.js';
import { UsageError } from './command.js';
import { commands } from './commands/index.js';

function usage(): string {
  const rows = commands.map((c) => `  qmcp ${c.path.join(' ').padEnd(22)} ${c.summary}`);
  return ['usage: qmcp COMMAND [ARGS]', '', 'commands:', ...rows].join('\n');
}

function select(argv: string[]): { command: Command; rest: string[] } | undefined {
  let best: Command | undefined;
  for (const c of commands) {
    const matches = c.path.every((word, i) => argv[i] === word);
    if (matches && (!best || c.path.length > best.path.length)) best = c;
  }
  return best ? { command: best, rest: argv.slice(best.path.length) } : undefined;
}

/** Runs the qmcp command line and resolves to its exit status. */
export async function main(argv: string[]): Promise<number> {
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    console.log(usage());
    return argv.length === 0 ? 2 : 0;
  }
  const found = select(argv);
  if (!found) {
    console.error(`qmcp: unknown command: ${argv.join(' ')}\n\n${usage()}`);
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
