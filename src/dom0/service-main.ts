/**
 * The one executable behind every qmcp dom0 service. qrexec runs the
 * installed wrapper, which execs this with QMCP_ROOT and QMCP_QUBESD_SOCKET
 * set; the service is chosen by QREXEC_SERVICE_FULL_NAME.
 */
import { spawn } from 'node:child_process';
import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileWitness, journalWitness, openAudit } from './audit/index.js';
import type { ApprovalRequest } from './gate/store.js';
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

/** While a call waits for the operator these withdraw it; otherwise they end the service as they always did. */
const STOP_SIGNALS: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGHUP'];

/** A desktop notification in dom0, best effort: the journal line is the record. */
function desktopNotice(r: ApprovalRequest): void {
  const child = spawn('notify-send', ['--app-name=qmcp', 'qmcp: approval needed', `${r.principal} asks for ${r.operation}: qmcp dom0 approvals show ${r.id}`], {
    stdio: 'ignore',
    detached: true,
  });
  child.on('error', () => undefined);
  child.unref();
}

export async function main(env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const root = resolve(env['QMCP_ROOT'] || '/');
  const log = operatorLog(root);
  // a caller gone makes writes fail (EPIPE): the gate withdraws on it, nothing else needs to know
  process.stdout.on('error', () => undefined);
  process.stderr.on('error', () => undefined);
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
      gate: {
        reload: () => loadDom0Config(root, (m) => log(m))?.service ?? null,
        onStop: (withdraw) => {
          for (const signal of STOP_SIGNALS) process.on(signal, withdraw);
          return () => {
            for (const signal of STOP_SIGNALS) process.off(signal, withdraw);
          };
        },
        notify: root === '/' ? desktopNotice : (r) => log(`approval needed: request ${r.id}, ${r.operation} by ${r.principal}`),
      },
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
