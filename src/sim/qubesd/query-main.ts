/** The simulated dom0's qubesd-query, run by its qrexec service scripts. */
import { qubesdQuery } from './query.js';

// exit at once: a caller may hold stdin open after the payload that counts
process.exit(await qubesdQuery(process.argv.slice(2), { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr }));
