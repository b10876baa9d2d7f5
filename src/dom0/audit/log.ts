import { mkdir, open } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { AuditEntry, EntryBody, EntryFields, ResultClass } from './entry.js';
import { makeBody } from './entry.js';
import type { AppendOptions } from './append.js';
import { appendEntry, pruneAudit } from './append.js';
import type { Aggregator } from './aggregate.js';
import { refusalAggregator } from './aggregate.js';
import { auditLogPath } from './files.js';
import type { Retention } from './prune.js';
import type { AuditWitness } from './witness.js';
import { defaultWitness } from './witness.js';

export interface AuditOptions {
  /** '/' on a real dom0; the simulated dom0's directory otherwise. */
  readonly root: string;
  /** Defaults to the journal when root is '/', to a file under root otherwise. */
  readonly witness?: AuditWitness;
  /** Told when the witness could not record a head; the append still stands. */
  readonly onWitnessError?: (err: unknown) => void;
  readonly maxFileBytes?: number;
  /** What rotated files to keep (prune.ts); absent keeps them all. */
  readonly retention?: Retention | null;
  /** Refusals go through it (counted) and every other entry flushes it first; absent writes each refusal. */
  readonly aggregator?: Aggregator;
  readonly lockTimeoutMs?: number;
  readonly clock?: () => Date;
}

/** What a service asks to do, logged before it acts. */
export interface IntentFields {
  readonly principal: string;
  readonly operation: string;
  readonly qubes?: readonly string[];
  readonly keys?: readonly string[];
}

/** How the call ended; qubes and keys default to the intent's. */
export interface OutcomeFields {
  readonly result: ResultClass;
  readonly detail?: string;
  readonly qubes?: readonly string[];
  readonly keys?: readonly string[];
}

/** A call refused before acting (no intent precedes it). */
export interface RefusalFields extends IntentFields {
  /** The reason code, for the operator only. */
  readonly detail?: string;
  /** Identical refusals this entry stands for, counted by the caller (the per-call rate limit); 1 by default. */
  readonly count?: number;
}

/** Something the operator did from dom0 (tier, mode, restore, reap). */
export interface OperatorFields extends IntentFields {
  readonly result: ResultClass;
  readonly detail?: string;
}

/** An action-gate entry: a request, its answer or end, a plan event; `correlation` ties them (and the call's intent) together. */
export interface GateFields extends IntentFields {
  readonly kind: 'request' | 'answer' | 'plan';
  /** Absent on a request: a fresh one is made and returned. */
  readonly correlation?: string;
  readonly result: ResultClass | null;
  /** A reason code or who answered and how, never a value. */
  readonly detail?: string;
}

export interface AuditLog {
  readonly path: string;
  /** Logs the intent and resolves to its correlation id; rejects when it could not be logged (refuse then). */
  intent(fields: IntentFields, correlation?: string): Promise<string>;
  /** Logs how the call ended; `correlation` must come from this object's intent(). */
  outcome(correlation: string, fields: OutcomeFields): Promise<AuditEntry>;
  /** Resolves once the refusal is on disk, or counted by the aggregator. */
  refusal(fields: RefusalFields): Promise<void>;
  operator(fields: OperatorFields): Promise<AuditEntry>;
  gate(fields: GateFields): Promise<AuditEntry>;
}

const DEFAULT_MAX_FILE_BYTES = 16 * 1024 * 1024;
const DEFAULT_LOCK_TIMEOUT_MS = 5_000;

/**
 * Opens the audit log for appending. Every method resolves only once its
 * entry is on disk (fsynced); any failure rejects, and the service framework
 * turns a rejected intent into a refusal.
 *
 * The witness is written after the entry and outside the lock. Its failure
 * does not undo or refuse the call: the entry is already durable, the agent
 * cannot write either the log or the journal, and verify reports every entry
 * past the last witnessed head, so a lagging witness is visible rather than
 * silent. Refusing on it would let a journald hiccup stop every call.
 */
export function openAudit(options: AuditOptions): AuditLog {
  const path = auditLogPath(options.root);
  const { aggregator } = options;
  const write = witnessedAppend(options);
  // Intents logged by this process, bounded as logged, awaiting their outcome.
  const intents = new Map<string, IntentFields>();

  async function append(fields: EntryFields): Promise<AuditEntry> {
    // counted refusals come first, so what was refused stays before what was done after it
    await aggregator?.flush();
    return write(makeBody(fields));
  }

  return {
    path,
    async intent(fields, correlation) {
      const entry = await append({ kind: 'intent', ...pick(fields), ...(correlation === undefined ? {} : { correlation }), result: null });
      intents.set(entry.correlation, { principal: entry.principal, operation: entry.operation, qubes: entry.qubes, keys: entry.keys });
      return entry.correlation;
    },
    async outcome(correlation, fields) {
      const intent = intents.get(correlation);
      if (!intent) throw new Error('audit outcome for an intent this process did not log');
      intents.delete(correlation);
      return append({
        kind: 'outcome',
        principal: intent.principal,
        operation: intent.operation,
        correlation,
        qubes: fields.qubes ?? intent.qubes,
        keys: fields.keys ?? intent.keys,
        result: fields.result,
        detail: fields.detail ?? null,
      });
    },
    async refusal(fields) {
      const refusal: EntryFields = { kind: 'refusal', ...pick(fields), result: 'refused', detail: fields.detail ?? null };
      if (aggregator && (fields.count ?? 1) === 1) await aggregator.add(makeBody(refusal));
      else await append({ ...refusal, ...(fields.count === undefined ? {} : { count: fields.count }) });
    },
    async operator(fields) {
      return append({ kind: 'operator', ...pick(fields), result: fields.result, detail: fields.detail ?? null });
    },
    async gate(fields) {
      return append({
        kind: fields.kind,
        ...pick(fields),
        ...(fields.correlation === undefined ? {} : { correlation: fields.correlation }),
        result: fields.result,
        detail: fields.detail ?? null,
      });
    },
  };
}

function appendOptionsOf(options: AuditOptions): AppendOptions {
  return {
    logPath: auditLogPath(options.root),
    maxFileBytes: options.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES,
    lockTimeoutMs: options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS,
    clock: options.clock ?? (() => new Date()),
    retention: options.retention ?? null,
  };
}

/** Appends a body, then records the new head with the witness (a witness failure is told, never thrown). */
function witnessedAppend(options: AuditOptions): (body: EntryBody) => Promise<AuditEntry> {
  const witness = options.witness ?? defaultWitness(options.root);
  const appendOptions = appendOptionsOf(options);
  return async (body) => {
    const entry = await appendEntry(appendOptions, body);
    try {
      await witness.record({ seq: entry.seq, hash: entry.hash });
    } catch (err) {
      options.onWitnessError?.(err);
    }
    return entry;
  };
}

/**
 * The aggregator a long-lived process (the resident service) shares among
 * its calls' audit logs: it writes each count as one entry through the same
 * append and witness. `options` as for openAudit, without an aggregator.
 */
export function auditAggregator(options: AuditOptions, windowMs: number, onError: (err: unknown, count: number) => void, now: () => number = Date.now): Aggregator {
  const write = witnessedAppend(options);
  return refusalAggregator({
    write: (body, count) => write({ ...body, ...(count > 1 ? { count } : {}) }),
    windowMs,
    maxKeys: MAX_PENDING_KEYS,
    onError: (err, _body, count) => onError(err, count),
    now,
  });
}

/** Distinct refusals an aggregator holds at once: bounds its memory whatever a caller varies. */
const MAX_PENDING_KEYS = 64;

/** Prunes what retention no longer keeps, with a witnessed checkpoint per file; resolves to whether anything was pruned. */
export async function pruneAuditLog(options: AuditOptions): Promise<boolean> {
  const head = await pruneAudit(appendOptionsOf(options));
  if (head === null) return false;
  await (options.witness ?? defaultWitness(options.root)).record(head);
  return true;
}

/** Copies only the whitelisted members, whatever else the object carries. */
function pick(fields: IntentFields): IntentFields {
  return { principal: fields.principal, operation: fields.operation, qubes: fields.qubes, keys: fields.keys };
}

/**
 * Creates the log's directory and an empty log (and the file witness's
 * directory, for a non-'/' root). For the installer and the simulator;
 * services never create it themselves.
 */
export async function initAuditLog(root: string): Promise<string> {
  const path = auditLogPath(root);
  await mkdir(dirname(path), { recursive: true, mode: 0o750 });
  if (resolve(root) !== '/') await mkdir(join(root, 'var', 'lib', 'qmcp'), { recursive: true, mode: 0o750 });
  const handle = await open(path, 'a', 0o640);
  await handle.close();
  return path;
}
