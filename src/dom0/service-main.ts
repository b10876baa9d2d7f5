/**
 * The one executable behind every qmcp dom0 service. qrexec runs the
 * installed wrapper, which execs this with QMCP_ROOT and QMCP_QUBESD_SOCKET
 * set; the service is chosen by QREXEC_SERVICE_FULL_NAME.
 */
import { spawn } from 'node:child_process';
import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileWitness, journalWitness, openAudit } from './audit/index.js';
import { Qubesd } from './qubesd.js';
import { processDeps } from './create/deps.js';
import { loadDom0Config } from './service/config.js';
import { runService } from './service/run.js';
import type { ServiceSpec } from './service/run.js';
import { serviceTable } from './services/index.js';
import { readDeps } from './services/read-services.js';

const JOURNAL_TAG = 'qmcp-service';
const DEFAULT_SOCKET = '/var/run/qubesd.sock';

/** The operator's channel: the journal on a real dom0, a file under the simulated root. */
function operatorLog(root: string): (message: string) => void {
  if (root === '/') {
    return (message) => {
      const line = `${message}\n`;
      const child = spawn('systemd-cat', ['-t', JOURNAL_TAG, '-p', 'info'], { stdio: ['pipe', 'ignore', 'ignore'] });
      child.on('error', () => {
        const fallback = spawn('logger', ['-t', JOURNAL_TAG, '--', message], { stdio: 'ignore' });
        fallback.on('error', () => undefined);
      });
      child.stdin.on('error', () => undefined);
      child.stdin.end(line);
    };
  }
  const path = join(root, 'var', 'log', 'qmcp', 'service.log');
  return (message) => {
    try {
      mkdirSync(dirname(path), { recursive: true, mode: 0o750 });
      appendFileSync(path, `${new Date().toISOString()} [${process.pid}] ${message}\n`, { mode: 0o640 });
    } catch {
      // the operator log is best effort; the audit log is the record
    }
  };
}

export async function main(env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const root = resolve(env['QMCP_ROOT'] || '/');
  const log = operatorLog(root);
  try {
    const witness = root === '/' ? journalWitness() : fileWitness(join(root, 'var', 'lib', 'qmcp', 'audit-witness'));
    const config = loadDom0Config(root, (m) => log(m));
    // without usable settings the runner refuses every call; the table only names them
    const table: ReadonlyMap<string, ServiceSpec<unknown>> = serviceTable({
      write: processDeps({ ...env, QMCP_ROOT: root }, log),
      read: readDeps(config),
    });
    return await runService(table, {
      env,
      stdin: process.stdin,
      io: { stdout: process.stdout, stderr: process.stderr },
      qubesd: new Qubesd(env['QMCP_QUBESD_SOCKET'] || DEFAULT_SOCKET, { log }),
      audit: openAudit({ root, witness }),
      config: config ? config.service : null,
      log,
    });
  } catch (err) {
    log(`service failed before it could answer: ${(err as Error).stack ?? String(err)}`);
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
