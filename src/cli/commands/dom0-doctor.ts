/** `qmcp dom0 doctor`: is the install healthy? One line per check. */
import type { Command } from '../command.js';
import { UsageError } from '../command.js';
import { DEFAULT_QUBESD_SOCKET, parseDom0Options } from '../args.js';
import { runDoctor } from '../../dom0/operator/doctor.js';

const USAGE = `usage: qmcp dom0 doctor [--root DIR] [--qubesd-socket PATH] [--json]

Checks the install under DIR (default /) and the qubes (through qubesd at
PATH, default ${DEFAULT_QUBESD_SOCKET}): installed files equal what this version
renders and carry its model hash; the policy directory parses; settings
valid (each fail-closed fallback reported; a malformed gate is a note, as
it only asks more) and readable by the dom0 user; which operations the gate
asks for, and where Qubes shows its dialog (the principal's GUI qube);
the audit log appendable and its chain whole; the reaper timer enabled;
the principal present; umbrella+sink hybrids; qubes with two elevation
tags; qubes in the reserved prefix outside the umbrella (a note: accepted
residual); dependencies across the boundary; half-created qubes and failed
rollbacks; tombstones due (a note); orphans, tombstones of a removed
principal (a note naming the command to restore or reap one). With several principals the qube
checks run for each (each line names it), and a qube tagged into two
principals' worlds fails. Prints ok, FAIL or note per check.
Exit 0 healthy, 1 not healthy, 2 usage.`;

export const dom0DoctorCommand: Command = {
  path: ['dom0', 'doctor'],
  summary: 'check the install, settings, audit log and tags; exit 0 only when healthy',
  usage: USAGE,
  async run(argv: string[]): Promise<number> {
    const { root, socket, json, positionals, principal } = parseDom0Options(argv, USAGE);
    if (positionals.length > 0) throw new UsageError(`unexpected argument: ${positionals[0]}\n${USAGE}`);
    if (principal !== undefined) throw new UsageError(`doctor checks every principal: --principal does not apply\n${USAGE}`);
    const report = await runDoctor({ root, qubesdSocket: socket });
    if (json) process.stdout.write(JSON.stringify(report) + '\n');
    else {
      // no control characters reach the terminal, whatever a file or qube name holds
      // eslint-disable-next-line no-control-regex
      for (const c of report.checks) process.stdout.write(`${c.status.padEnd(4)}  ${c.check}: ${c.message.replace(/[\x00-\x1f\x7f]/g, '?')}\n`);
      process.stdout.write(report.healthy ? 'healthy\n' : 'NOT healthy\n');
    }
    return report.healthy ? 0 : 1;
  },
};
