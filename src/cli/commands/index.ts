import type { Command } from '../command.js';

/** Every qmcp subcommand, in the order `qmcp --help` lists them. */
export const commands: readonly Command[] = [
];
