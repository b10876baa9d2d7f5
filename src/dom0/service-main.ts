/**
 * The per-call front end of the qmcp dom0 services: qrexec runs the
 * installed wrapper, which execs this with QMCP_ROOT and QMCP_QUBESD_SOCKET
 * set; the service is chosen by QREXEC_SERVICE_FULL_NAME. The resident
 * front end (resident-main.ts) serves the same calls through the same
 * composition (service/compose.ts).
 */
import { dom0Host, serveDom0Call } from './service/compose.js';

/** While a call waits for the operator these withdraw it; otherwise they end the service as they always did. */
const STOP_SIGNALS: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGHUP'];

export async function main(env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const host = dom0Host(env, 'per-call');
  // a caller gone makes writes fail (EPIPE): the gate withdraws on it, nothing else needs to know
  process.stdout.on('error', () => undefined);
  process.stderr.on('error', () => undefined);
  try {
    return await serveDom0Call(host, {
      env,
      stdin: process.stdin,
      io: { stdout: process.stdout, stderr: process.stderr },
      onStop: (withdraw) => {
        for (const signal of STOP_SIGNALS) process.on(signal, withdraw);
        return () => {
          for (const signal of STOP_SIGNALS) process.off(signal, withdraw);
        };
      },
    });
  } catch (err) {
    host.log(`service failed before it could answer: ${(err as Error).stack ?? String(err)}`);
    throw err;
  }
}

main().then(
  (status) => {
    process.exitCode = status;
  },
  () => {
    // never let a stack trace reach the caller: the uniform refusal instead
    process.stderr.write('Request refused\n', () => process.exit(126));
  },
);
