/**
 * The one composition behind every qmcp dom0 service call, whichever front
 * end received it: the per-call executable qrexec runs, or the resident
 * process qrexec connects to. Each call reads the settings, opens the audit
 * log and its qubesd client afresh, so nothing one call learns reaches the
 * next.
 */
import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { fileWitness, journalWitness, openAudit } from '../audit/index.js';
import { processDeps } from '../create/deps.js';
import { operatorLog } from '../operator-log.js';
import type { ApprovalRequest } from '../gate/store.js';
import { Qubesd } from '../qubesd.js';
import { serviceTable } from '../services/index.js';
import { readDeps } from '../services/read-services.js';
import { loadDom0Config } from './config.js';
import type { ServiceIo } from './output.js';
import { runService } from './run.js';
import type { ServiceSpec } from './run.js';

const DEFAULT_SOCKET = '/var/run/qubesd.sock';

/** Where a front end runs: the dom0 root, qubesd's socket and the operator's channel. */
export interface Dom0Host {
  readonly root: string;
  readonly qubesdSocket: string;
  /** The operator's channel (journal): precise reasons, never shown to the caller. */
  readonly log: (message: string) => void;
}

/** What one call brings: qrexec's description of it, the caller's stdin and where the answer goes. */
export interface Dom0CallIo {
  /** The qrexec service environment (QREXEC_SERVICE_FULL_NAME, QREXEC_REMOTE_DOMAIN, ...). */
  readonly env: NodeJS.ProcessEnv;
  readonly stdin: Readable;
  readonly io: ServiceIo;
  /** Calls `withdraw` when this call must stop waiting for the operator; returns the unsubscribe. */
  readonly onStop: (withdraw: () => void) => () => void;
}

/** The host as QMCP_ROOT and QMCP_QUBESD_SOCKET name it. */
export function dom0Host(env: NodeJS.ProcessEnv): Dom0Host {
  const root = resolve(env['QMCP_ROOT'] || '/');
  return { root, qubesdSocket: env['QMCP_QUBESD_SOCKET'] || DEFAULT_SOCKET, log: operatorLog(root) };
}

/** A desktop notification in dom0, best effort: the journal line is the record. */
function desktopNotice(r: ApprovalRequest): void {
  const child = spawn('notify-send', ['--app-name=qmcp', 'qmcp: approval needed', `${r.principal} asks for ${r.operation}: qmcp dom0 approvals show ${r.id}`], {
    stdio: 'ignore',
    detached: true,
  });
  child.on('error', () => undefined);
  child.unref();
}

/** Serves one call through every guard, in order (run.ts); resolves to the status the caller is told. */
export async function serveDom0Call(host: Dom0Host, c: Dom0CallIo): Promise<number> {
  const { root, log } = host;
  const witness = root === '/' ? journalWitness() : fileWitness(join(root, 'var', 'lib', 'qmcp', 'audit-witness'));
  const config = loadDom0Config(root, (m) => log(m));
  // without usable settings the runner refuses every call; the table only names them
  const table: ReadonlyMap<string, ServiceSpec<unknown>> = serviceTable({
    write: processDeps({ QMCP_ROOT: root }, log),
    read: readDeps(config),
  });
  return runService(table, {
    env: c.env,
    stdin: c.stdin,
    io: c.io,
    qubesd: new Qubesd(host.qubesdSocket, { log }),
    audit: openAudit({ root, witness }),
    config: config ? config.service : null,
    log,
    gate: {
      reload: () => loadDom0Config(root, (m) => log(m))?.service ?? null,
      onStop: c.onStop,
      notify: root === '/' ? desktopNotice : (r) => log(`approval needed: request ${r.id}, ${r.operation} by ${r.principal}`),
    },
  });
}
