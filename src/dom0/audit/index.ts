/** The dom0 audit log: what dom0 services, the operator CLI and doctor use. */
export type { AuditEntry, EntryKind, ResultClass } from './entry.js';
export { MAX_DETAIL, MAX_LIST, MAX_NAME } from './entry.js';
export type { ChainHead } from './append.js';
export { BrokenHeadError } from './append.js';
export { TornTailError, auditLogPath } from './files.js';
export { LockBusyError } from '../lockfile.js';
export type { AuditLog, AuditOptions, IntentFields, OperatorFields, OutcomeFields, RefusalFields } from './log.js';
export { auditAggregator, initAuditLog, openAudit, pruneAuditLog } from './log.js';
export type { Aggregator } from './aggregate.js';
export type { PrunePoint, Retention } from './prune.js';
export type { AuditWitness } from './witness.js';
export { defaultWitness, fileWitness, journalWitness } from './witness.js';
export type { AuditProblem, AuditReport, VerifyOptions } from './verify.js';
export { verifyAudit } from './verify.js';
export type { TailLine } from './tail.js';
export { formatTailJson, formatTailLine, readTail } from './tail.js';
export { asciiJson, quote } from './escape.js';
