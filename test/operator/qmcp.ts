/** Runs the qmcp command line as the operator does, in a child process. */
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { childOutput } from '../child-output.js';
import type { ChildOutput } from '../child-output.js';

const QMCP = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bin', 'qmcp.js');

export type Run = ChildOutput;

export function qmcp(args: string[]): Promise<Run> {
  return childOutput(spawn(process.execPath, [QMCP, ...args], { stdio: ['ignore', 'pipe', 'pipe'] }));
}
