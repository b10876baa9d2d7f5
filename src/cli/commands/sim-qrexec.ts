/** `qmcp sim qrexec --dir DIR --as QUBE TARGET SERVICE[+ARG]`: one call as qrexec-client-vm in QUBE makes it. */
import { join, resolve } from 'node:path';
import type { Command } from '../command.js';
import { UsageError } from '../command.js';
import { qrexecCall } from '../../sim/qrexec/client.js';

interface Args {
  dir: string;
  as: string;
  target: string;
  service: string;
}

function parseArgs(args: string[]): Args {
  let dir: string | undefined;
  let as: string | undefined;
  const positional: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i] as string;
    const value = (): string => {
      const v = args[++i];
      if (v === undefined) throw new UsageError(`${a} needs a value`);
      return v;
    };
    if (a === '--dir') dir = value();
    else if (a.startsWith('--dir=')) dir = a.slice(6);
    else if (a === '--as') as = value();
    else if (a.startsWith('--as=')) as = a.slice(5);
    else if (a === '--') {
      positional.push(...args.slice(i + 1));
      break;
    } else if (a.startsWith('-') && a !== '-') throw new UsageError(`unknown option: ${a}`);
    else positional.push(a);
  }
  if (!dir) throw new UsageError('--dir DIR is required');
  if (!as) throw new UsageError('--as QUBE is required');
  if (as === 'dom0' || as.includes('/')) throw new UsageError('--as must name a qube other than dom0');
  if (positional.length !== 2) throw new UsageError('expected TARGET SERVICE[+ARG]');
  return { dir: resolve(dir), as, target: positional[0] as string, service: positional[1] as string };
}

export const simQrexecCommand: Command = {
  path: ['sim', 'qrexec'],
  summary: 'make one qrexec call from a qube of the running simulated host',
  async run(argv: string[]): Promise<number> {
    const a = parseArgs(argv);
    const status = await qrexecCall(join(a.dir, 'qrexec', `${a.as}.sock`), a.target, a.service, {
      stdin: process.stdin,
      stdout: process.stdout,
      stderr: process.stderr,
    });
    // the service is done; a caller that keeps our stdin open must not keep us running
    process.stdin.destroy();
    return status;
  },
};
