/** The MCP server's qrexec runner when it plays the principal of a simulated host. */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { QrexecRunner, type QrexecRunnerOptions } from '../principal/qrexec.js';

/** The principal qube the simulator's demo and `serve --sim` act as. */
export const SIM_PRINCIPAL = 'mcp-control';

/** The simulator's drop-in qrexec-client-vm and the environment that makes it reach the router as the principal. */
export function simClientOptions(dir: string): QrexecRunnerOptions {
  const client = fileURLToPath(new URL('../../../bin/qrexec-client-vm', import.meta.url));
  return { client, env: { ...process.env, QMCP_QREXEC_SOCKET: join(dir, 'qrexec', `${SIM_PRINCIPAL}.sock`) } };
}

export function simRunner(dir: string): QrexecRunner {
  return new QrexecRunner(simClientOptions(dir));
}
