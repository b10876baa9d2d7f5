/**
 * The simulated dom0's `qrexec-client`, for the form qmcp uses:
 * `qrexec-client -d QUBE 'root:QUBESRPC SERVICE+ARG dom0'`. Its first
 * argument, from the drop-in script, is the router's dom0 seat. Node
 * stdlib only.
 */
import { qrexecCall } from './client.js';

const [socket, ...args] = process.argv.slice(2);
const usage = "usage: qrexec-client -d QUBE 'root:QUBESRPC SERVICE[+ARG] dom0'\n";
const command = /^root:QUBESRPC ([^ ]+) dom0$/.exec(args[2] ?? '');
if (socket === undefined || args.length !== 3 || args[0] !== '-d' || command === null) {
  process.stderr.write(`qrexec-client (simulated): only a call as root into a qube is supported here\n${usage}`);
  process.exit(2);
}
const status = await qrexecCall(socket, args[1] ?? '', command[1] ?? '', { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr });
process.stdout.write('', () => process.stderr.write('', () => process.exit(status)));
