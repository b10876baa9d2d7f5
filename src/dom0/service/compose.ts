/**
 * The one composition behind every qmcp dom0 service call, whichever front
 * end received it: the per-call executable qrexec runs, or the resident
 * process qrexec connects to. Each call reads the settings once, opens the
 * audit log and its qubesd client afresh, so nothing one call learns reaches
 * the next.
 */
import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { auditAggregator, defaultWitness, openAudit } from '../audit/index.js';
import type { AuditOptions } from '../audit/index.js';
import { parseSettings, readPrincipalsFile, settingsPath } from '../../shared/model/index.js';
import type { PrincipalsReading, Settings } from '../../shared/model/index.js';
import { processDeps } from '../create/deps.js';
import { operatorLog } from '../operator-log.js';
import type { ApprovalRequest } from '../gate/store.js';
import { Qubesd } from '../qubesd.js';
import { serviceTable } from '../services/index.js';
import { readDeps } from '../services/read-services.js';
import { loadDom0Config } from './config.js';
import type { ServiceIo } from './output.js';
import { refuse } from './output.js';
import { fileRateLimiter, memoryRateLimiter } from './rate.js';
import type { Overdue, RateLimiter } from './rate.js';
import { runService } from './run.js';
import type { ServiceSpec } from './run.js';

const DEFAULT_SOCKET = '/var/run/qubesd.sock';

/** Where a front end runs: the dom0 root, qubesd's socket and the operator's channel. */
export interface Dom0Host {
  readonly root: string;
  readonly qubesdSocket: string;
  /** The operator's channel (journal): precise reasons, never shown to the caller. */
  readonly log: (message: string) => void;
  /** The rate limit every call passes before any other work. */
  readonly limiter: RateLimiter;
  /** Where calls append to the audit log, with the resident's shared refusal counts. */
  readonly audit: AuditOptions;
  /** The settings as this call read them: the per-call executable's host is its one call's. */
  readonly settings?: PrincipalsReading;
}

/** Refused calls of one caller are counted for this long before they are written as one entry. */
export const AGGREGATE_WINDOW_MS = 10_000;

/** How a refusal for the rate limit is recorded: no service is looked at, so none is named. */
export const RATE_REFUSAL = { operation: 'rate-limit', detail: 'over the rate limit' } as const;

/** What one call brings: qrexec's description of it, the caller's stdin and where the answer goes. */
export interface Dom0CallIo {
  /** The qrexec service environment (QREXEC_SERVICE_FULL_NAME, QREXEC_REMOTE_DOMAIN, ...). */
  readonly env: NodeJS.ProcessEnv;
  readonly stdin: Readable;
  readonly io: ServiceIo;
  /** Calls `withdraw` when this call must stop waiting for the operator; returns the unsubscribe. */
  readonly onStop: (withdraw: () => void) => () => void;
}

/** Where the audit log is, how it rotates and what of it is kept, from the settings. */
export function auditOptions(root: string, settings: Settings): AuditOptions {
  const r = settings.auditRetention;
  return {
    root,
    witness: defaultWitness(root),
    maxFileBytes: r.fileBytes,
    retention: { maxBytes: r.keepBytes, maxAgeMs: r.keepDays === null ? null : r.keepDays * 24 * 60 * 60 * 1000 },
  };
}

/**
 * The host as QMCP_ROOT and QMCP_QUBESD_SOCKET name it. The resident keeps
 * the rate buckets and the refusal counts in memory, read from the settings
 * at its start; the per-call executable keeps each caller's bucket in a file.
 */
export function dom0Host(env: NodeJS.ProcessEnv, mode: 'resident' | 'per-call'): Dom0Host {
  const root = resolve(env['QMCP_ROOT'] || '/');
  const log = operatorLog(root);
  const reading = readPrincipalsFile(settingsPath(root));
  // the rate and the audit log are the machine's, alike in every principal's settings
  const settings = reading.principals.list[0] ?? parseSettings({}).settings;
  const base = { root, qubesdSocket: env['QMCP_QUBESD_SOCKET'] || DEFAULT_SOCKET, log };
  const audit = auditOptions(root, settings);
  if (mode === 'per-call') {
    const dir = join(root, 'var', 'lib', 'qmcp', 'rate');
    return { ...base, audit, settings: reading, limiter: fileRateLimiter(settings.rate, { dir, windowMs: AGGREGATE_WINDOW_MS, lockTimeoutMs: 2_000 }) };
  }
  const aggregator = auditAggregator(audit, AGGREGATE_WINDOW_MS, (err, count) =>
    log(`audit: ${count} counted refusals could not be written: ${(err as Error)?.message ?? String(err)}`),
  );
  return { ...base, audit: { ...audit, aggregator }, limiter: memoryRateLimiter(settings.rate) };
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
  const caller = c.env['QREXEC_REMOTE_DOMAIN'];
  // first, before the settings, qubesd or the policy: a caller over its rate costs a count and the refusal
  if (caller) {
    const rate = await host.limiter.take(caller);
    // the resident's aggregator counts each refusal; the per-call mode's bucket file counts them and says when they are due
    const record = host.audit.aggregator ? (rate.admit ? 0 : 1) : rate.due;
    if (record > 0) await recordRateRefusals(host, caller, record);
    if (!rate.admit) return refuse(c.io);
  }
  const status = await serveAdmitted(host, c);
  // after the answer: other callers' counts whose window has passed, so a caller that stopped calling leaves none behind
  await writeOverdueRefusals(host);
  return status;
}

/** Writes every caller's rate-limit count whose window has passed (the per-call mode's); returns them. */
export async function writeOverdueRefusals(host: Dom0Host): Promise<readonly Overdue[]> {
  const due = (await host.limiter.overdue?.()) ?? [];
  for (const { caller, count } of due) await recordRateRefusals(host, caller, count);
  return due;
}

/** COUNT calls of CALLER refused by the rate limit, as one entry; a count that cannot be written goes to the operator. */
async function recordRateRefusals(host: Dom0Host, caller: string, count: number): Promise<void> {
  await openAudit(host.audit)
    .refusal({ principal: caller, ...RATE_REFUSAL, ...(count > 1 ? { count } : {}) })
    .catch((err: unknown) => host.log(`audit: ${count} rate-limit refusals of ${caller} could not be written: ${(err as Error).message}`));
}

/** A call the rate limit admitted, through every other guard. */
async function serveAdmitted(host: Dom0Host, c: Dom0CallIo): Promise<number> {
  const { root, log } = host;
  const caller = c.env['QREXEC_REMOTE_DOMAIN'] ?? '';
  const config = loadDom0Config(root, (m) => log(m), host.settings, caller);
  // without usable settings the runner refuses every call; the table only names them
  const table: ReadonlyMap<string, ServiceSpec<unknown>> = serviceTable({
    write: processDeps({ QMCP_ROOT: root, QREXEC_REMOTE_DOMAIN: caller }, log),
    read: readDeps(config),
  });
  return runService(table, {
    env: c.env,
    stdin: c.stdin,
    io: c.io,
    qubesd: new Qubesd(host.qubesdSocket, { log }),
    audit: openAudit(host.audit),
    config: config ? config.service : null,
    log,
    gate: {
      reload: () => loadDom0Config(root, (m) => log(m), undefined, caller)?.service ?? null,
      onStop: c.onStop,
      notify: root === '/' ? desktopNotice : (r) => log(`approval needed: request ${r.id}, ${r.operation} by ${r.principal}`),
    },
  });
}
