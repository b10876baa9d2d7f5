/** `qmcp sim qrexec --dir DIR --as QUBE TARGET SERVICE[+ARG]`: one call as qrexec-client-vm in QUBE makes it. */
import { join, resolve } from 'node:path';
import type { Command } from '../command.js';
import { UsageError } from '../command.js';
import { parseCli } from '../args.js';
import { qrexecCall } from '../../sim/qrexec/client.js';

const USAGE = `usage: qmcp sim qrexec --dir DIR --as QUBE TARGET SERVICE[+ARG]

Makes one qrexec call from QUBE of the simulated host running at DIR, as
qrexec-client-vm inside QUBE would: our stdin goes to the service and its
stdout comes back. Exit status: the service's own; 126 refused (with
"Request refused" on stderr), 127 no such service, 125 qrexec failed (no
host running at DIR, for one); 2 usage.`;

interface Args {
  dir: string;
  as: string;
  target: string;
  service: string;
}

function parseArgs(args: string[]): Args {
  const { values, positionals: positional } = parseCli(args, { dir: { type: 'string' }, as: { type: 'string' } });
  const { dir, as } = values;
  if (!dir) throw new UsageError('--dir DIR is required');
  if (!as) throw new UsageError('--as QUBE is required');
  if (as === 'dom0' || as.includes('/')) throw new UsageError('--as must name a qube other than dom0');
  if (positional.length !== 2) throw new UsageError('expected TARGET SERVICE[+ARG]');
  return { dir: resolve(dir), as, target: positional[0] as string, service: positional[1] as string };
}

export const simQrexecCommand: Command = {
  path: ['sim', 'qrexec'],
  summary: 'make one qrexec call from a qube of the running simulated host',
  usage: USAGE,
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
