/** The MCP server's qrexec runner when it plays the principal of a simulated host. */
import { existsSync, readdirSync } from 'node:fs';
import { connect } from 'node:net';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { QrexecRunner, type QrexecRunnerOptions, type QrexecTransport } from '../principal/qrexec.js';
import { qrexecCall } from '../sim/qrexec/client.js';

/** The principal qube the simulator's demo and `serve --sim` act as unless told another. */
export const SIM_PRINCIPAL = 'mcp-control';

/** The simulator's drop-in qrexec-client-vm and the environment that makes it reach the router as PRINCIPAL. */
export function simClientOptions(dir: string, principal: string = SIM_PRINCIPAL): QrexecRunnerOptions {
  const client = fileURLToPath(new URL('../../../bin/qrexec-client-vm', import.meta.url));
  return { client, env: { ...process.env, QMCP_QREXEC_SOCKET: principalSocket(dir, principal) } };
}

/** The principal's calls straight to the router's socket, without a process per call (a real machine's C client costs little). */
export function simTransport(dir: string, principal: string = SIM_PRINCIPAL): QrexecTransport {
  const socket = principalSocket(dir, principal);
  return (target, service, stdio, signal) => qrexecCall(socket, target, service, stdio, signal);
}

export function simRunner(dir: string, principal: string = SIM_PRINCIPAL): QrexecRunner {
  return new QrexecRunner({ ...simClientOptions(dir, principal), transport: simTransport(dir, principal) });
}

/** Where `qmcp demo` (`npm start`) keeps its simulated host unless --dir says otherwise. */
export function demoDir(): string {
  const state = process.env['XDG_STATE_HOME'] || join(homedir(), '.local', 'state');
  return process.env['QMCP_DEMO_DIR'] || join(state, 'qmcp', 'demo');
}

function principalSocket(dir: string, principal: string): string {
  return join(dir, 'qrexec', `${principal}.sock`);
}

/** Connects and hangs up: the router ignores a call that never names its target. */
function reach(socket: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const s = connect(socket);
    s.once('connect', () => {
      s.destroy();
      resolve(undefined);
    });
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });
}

function otherSocket(dir: string): string | undefined {
  try {
    const name = readdirSync(join(dir, 'qrexec')).find((f) => f.endsWith('.sock'));
    return name === undefined ? undefined : join(dir, 'qrexec', name);
  } catch {
    return undefined;
  }
}

/**
 * Why no simulated host answers the principal at DIR, with what to do about
 * it, or undefined when one does. Checked before serving, so the operator
 * reads it instead of the agent finding every call failing.
 */
export async function simHostProblem(dir: string, principal: string = SIM_PRINCIPAL): Promise<string | undefined> {
  const start = `start one first with \`qmcp sim start --dir ${dir}\`, or run the demo (\`npm start\`), whose host is ${demoDir()}`;
  if (!existsSync(dir)) return `no simulated host at ${dir}: the directory does not exist; ${start}`;
  if (!existsSync(join(dir, 'state'))) return `${dir} holds no simulated host (no state in it); ${start}`;
  const socket = principalSocket(dir, principal);
  const failed = await reach(socket);
  if (failed === undefined) return undefined;
  // another qube's socket answering means the host runs without the principal
  const other = failed === 'ENOENT' ? otherSocket(dir) : undefined;
  if (other !== undefined && (await reach(other)) === undefined) {
    return `the simulated host at ${dir} runs but has no qube ${principal}, whose seat the MCP server takes; add it to the fleet`;
  }
  return `the simulated host at ${dir} is not running (${socket}: ${failed}); ${start}`;
}
