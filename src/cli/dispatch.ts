import type { Command } from './command.js';
import { UsageError } from './command.js';

const HELP = new Set(['--help', '-h']);

function rows(commands: readonly Command[]): string[] {
  return commands.map((c) => `  qmcp ${c.path.join(' ').padEnd(22)} ${c.summary}`);
}

function usage(commands: readonly Command[]): string {
  return [
    'usage: qmcp COMMAND [ARGS]',
    '       qmcp --version',
    '',
    'commands:',
    ...rows(commands),
    '',
    '`qmcp COMMAND --help` shows the options of one.',
  ].join('\n');
}

/** The commands under a group of words such as ['dom0'] or ['sim']. */
function groupUsage(group: readonly string[], members: readonly Command[]): string {
  const words = group.join(' ');
  return [`usage: qmcp ${words} COMMAND [ARGS]`, '', 'commands:', ...rows(members), '', `\`qmcp ${words} COMMAND --help\` shows the options of one.`].join('\n');
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

/** The longest start of argv that begins some command's path, and the commands it begins. */
function group(commands: readonly Command[], argv: string[]): { words: string[]; members: Command[] } | undefined {
  for (let n = argv.length; n > 0; n--) {
    const words = argv.slice(0, n);
    const members = commands.filter((c) => c.path.length > n && words.every((w, i) => c.path[i] === w));
    if (members.length > 0) return { words, members };
  }
  return undefined;
}

/** Whether the arguments ask for help (before any `--`). */
function wantsHelp(args: string[]): boolean {
  const end = args.indexOf('--');
  return (end === -1 ? args : args.slice(0, end)).some((a) => HELP.has(a));
}

/** Runs one of `commands` as argv says and resolves to its exit status (2 for usage errors). */
export async function dispatch(commands: readonly Command[], argv: string[], version: string): Promise<number> {
  if (argv.length === 0) {
    console.error(usage(commands));
    return 2;
  }
  if (HELP.has(argv[0] as string) || argv[0] === 'help') {
    console.log(usage(commands));
    return 0;
  }
  if (argv[0] === '--version' || argv[0] === '-V') {
    console.log(version);
    return 0;
  }
  const found = select(commands, argv);
  if (!found) {
    const g = group(commands, argv);
    if (g && argv.length === g.words.length) {
      console.error(groupUsage(g.words, g.members));
      return 2;
    }
    if (g && argv.length === g.words.length + 1 && HELP.has(argv[g.words.length] as string)) {
      console.log(groupUsage(g.words, g.members));
      return 0;
    }
    console.error(`qmcp: unknown command: ${argv.join(' ')}\n\n${g ? groupUsage(g.words, g.members) : usage(commands)}`);
    return 2;
  }
  const { command, rest } = found;
  if (wantsHelp(rest)) {
    console.log(command.usage);
    return 0;
  }
  try {
    return await command.run(rest);
  } catch (err) {
    if (err instanceof UsageError) {
      const words = command.path.join(' ');
      const hint = err.message.includes('usage: ') ? '' : `\n(\`qmcp ${words} --help\` shows the usage)`;
      console.error(`qmcp ${words}: ${err.message}${hint}`);
      return 2;
    }
    throw err;
  }
}
