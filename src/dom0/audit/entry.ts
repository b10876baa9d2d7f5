import { createHash, randomBytes } from 'node:crypto';
import { asciiJson } from './escape.js';

/**
 * One audit entry and its canonical form. The log stores only what this
 * module builds: callers hand in typed fields, never an object that is
 * copied through, so no property value, feature value or file content can
 * reach the log by accident.
 */

/**
 * `request`, `answer` and `plan` are the action gate's (docs/action-gate.md):
 * a call waiting for the operator, how it was answered or ended, a plan's
 * submission, answer and steps. `prune` is the checkpoint retention writes
 * before it deletes a rotated file (prune.ts).
 */
export const ENTRY_KINDS = ['intent', 'outcome', 'refusal', 'operator', 'request', 'answer', 'plan', 'prune'] as const;
export type EntryKind = (typeof ENTRY_KINDS)[number];

/** How a call ended: done, an in-scope error, an internal failure, refused. */
export const RESULT_CLASSES = ['ok', 'error', 'failed', 'refused'] as const;
export type ResultClass = (typeof RESULT_CLASSES)[number];

/** The `prev` of the first entry of a log. */
export const GENESIS_HASH = '0'.repeat(64);

/** Bounds on agent-supplied strings, counted in code points, and on list sizes. */
export const MAX_NAME = 64;
export const MAX_DETAIL = 200;
export const MAX_LIST = 32;

/**
 * No canonical line is longer than this: every code point serialises to at
 * most 12 bytes (a surrogate pair as two escapes), and every string and list
 * is bounded above.
 */
export const MAX_LINE_BYTES = 128 * 1024;

export interface AuditEntry {
  readonly seq: number;
  /** ISO 8601 UTC, from the appending process's clock. */
  readonly time: string;
  readonly kind: EntryKind;
  /** The calling qube as qrexec named it, or the operator for operator entries. */
  readonly principal: string;
  /** The operation id, e.g. the qrexec service name. */
  readonly operation: string;
  /** Links an outcome to its intent; fresh for other entries. */
  readonly correlation: string;
  readonly qubes: readonly string[];
  /** Property, feature or tag names: never their values. */
  readonly keys: readonly string[];
  /** Null on an intent; set on every other kind. */
  readonly result: ResultClass | null;
  /** A reason code or exception class name, never a value. */
  readonly detail: string | null;
  /** True when a string or list was cut to its bound. */
  readonly truncated: boolean;
  /**
   * How many identical refusals this one entry stands for (aggregate.ts);
   * absent for one. Never 1, so an entry has one canonical form.
   */
  readonly count?: number;
  readonly prev: string;
  readonly hash: string;
}

/** An entry before the log gives it a place in the chain. */
export type EntryBody = Omit<AuditEntry, 'seq' | 'time' | 'prev' | 'hash'>;

/** The members of a line, in the order they are serialised. */
const MEMBERS: readonly string[] = [
  'seq', 'time', 'kind', 'principal', 'operation', 'correlation',
  'qubes', 'keys', 'result', 'detail', 'truncated', 'prev', 'hash',
];
/** The members of an aggregated line: `count` after `truncated`. */
const COUNTED_MEMBERS: readonly string[] = [...MEMBERS.slice(0, 11), 'count', ...MEMBERS.slice(11)];

const HEX64 = /^[0-9a-f]{64}$/;
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** What the caller supplies; everything else is filled in here. */
export interface EntryFields {
  readonly kind: EntryKind;
  readonly principal: string;
  readonly operation: string;
  readonly correlation?: string;
  readonly qubes?: readonly string[];
  readonly keys?: readonly string[];
  readonly result?: ResultClass | null;
  readonly detail?: string | null;
  /** Identical refusals this entry stands for; 1 (or absent) for one. */
  readonly count?: number;
}

/** A fresh correlation id: 128 random bits in hex. */
export function newCorrelation(): string {
  return randomBytes(16).toString('hex');
}

interface Cut {
  truncated: boolean;
}

function boundString(value: unknown, max: number, what: string, cut: Cut): string {
  if (typeof value !== 'string') throw new TypeError(`audit ${what} must be a string`);
  const points = Array.from(value);
  if (points.length <= max) return value;
  cut.truncated = true;
  return points.slice(0, max).join('');
}

function boundList(value: unknown, what: string, cut: Cut): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new TypeError(`audit ${what} must be a list of strings`);
  if (value.length > MAX_LIST) cut.truncated = true;
  return value.slice(0, MAX_LIST).map((item: unknown) => boundString(item, MAX_NAME, what, cut));
}

/** Checks the fields' types and cuts agent-supplied strings to their bounds. */
export function makeBody(fields: EntryFields): EntryBody {
  if (!ENTRY_KINDS.includes(fields.kind)) throw new TypeError('audit kind is not one of the known kinds');
  const result = fields.result ?? null;
  if (result !== null && !RESULT_CLASSES.includes(result)) throw new TypeError('audit result is not a result class');
  const count = fields.count ?? 1;
  if (!Number.isSafeInteger(count) || count < 1) throw new TypeError('audit count must be a positive integer');
  const cut: Cut = { truncated: false };
  // Members are evaluated in order, so `truncated` sees every cut above it.
  return {
    kind: fields.kind,
    principal: boundString(fields.principal, MAX_NAME, 'principal', cut),
    operation: boundString(fields.operation, MAX_NAME, 'operation', cut),
    correlation: boundString(fields.correlation ?? newCorrelation(), MAX_NAME, 'correlation', cut),
    qubes: boundList(fields.qubes, 'qube', cut),
    keys: boundList(fields.keys, 'key', cut),
    result,
    detail: fields.detail === undefined || fields.detail === null ? null : boundString(fields.detail, MAX_DETAIL, 'detail', cut),
    truncated: cut.truncated,
    ...(count > 1 ? { count } : {}),
  };
}

type Unhashed = Omit<AuditEntry, 'hash'>;

/**
 * The hashed text: the line without its `hash` member. Canonical means JSON
 * with the members in this fixed order, no whitespace, and every character
 * outside printable ASCII as a \u escape, so the file itself is safe to cat.
 */
function bodyText(e: Unhashed): string {
  return asciiJson({
    seq: e.seq, time: e.time, kind: e.kind, principal: e.principal, operation: e.operation,
    correlation: e.correlation, qubes: e.qubes, keys: e.keys, result: e.result, detail: e.detail,
    truncated: e.truncated, ...(e.count === undefined ? {} : { count: e.count }), prev: e.prev,
  });
}

/** sha256 over the canonical text of every member but `hash`. */
export function hashOf(e: Unhashed): string {
  return createHash('sha256').update(bodyText(e), 'utf8').digest('hex');
}

/** Gives a body its place after the entry (seq, hash) `prev`. */
export function seal(body: EntryBody, seq: number, time: Date, prev: string): AuditEntry {
  const unhashed: Unhashed = { seq, time: time.toISOString(), ...body, prev };
  return { ...unhashed, hash: hashOf(unhashed) };
}

/** The canonical line (without its newline). */
export function lineOf(e: AuditEntry): string {
  return bodyText(e).slice(0, -1) + `,"hash":${asciiJson(e.hash)}}`;
}

function isStringList(v: unknown): v is string[] {
  return Array.isArray(v) && v.every((x) => typeof x === 'string');
}

/**
 * Reads one line back. Succeeds only for a line that is exactly the
 * canonical form of a well-typed entry whose hash matches its content.
 */
export function parseLine(line: string): { entry: AuditEntry } | { problem: string } {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return { problem: 'not a JSON line' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { problem: 'not a JSON object' };
  const o = value as Record<string, unknown>;
  const keys = Object.keys(o);
  const members = 'count' in o ? COUNTED_MEMBERS : MEMBERS;
  if (keys.length !== members.length || keys.some((k, i) => k !== members[i])) {
    return { problem: 'members differ from the entry format' };
  }
  const typed =
    Number.isSafeInteger(o['seq']) && (o['seq'] as number) >= 1 &&
    typeof o['time'] === 'string' && ISO_TIME.test(o['time']) &&
    ENTRY_KINDS.includes(o['kind'] as EntryKind) &&
    typeof o['principal'] === 'string' && typeof o['operation'] === 'string' &&
    typeof o['correlation'] === 'string' &&
    isStringList(o['qubes']) && isStringList(o['keys']) &&
    (o['result'] === null || RESULT_CLASSES.includes(o['result'] as ResultClass)) &&
    (o['detail'] === null || typeof o['detail'] === 'string') &&
    typeof o['truncated'] === 'boolean' &&
    (!('count' in o) || (Number.isSafeInteger(o['count']) && (o['count'] as number) >= 2)) &&
    typeof o['prev'] === 'string' && HEX64.test(o['prev']) &&
    typeof o['hash'] === 'string' && HEX64.test(o['hash']);
  if (!typed) return { problem: 'a member has the wrong type' };
  const entry = o as unknown as AuditEntry;
  if (lineOf(entry) !== line) return { problem: 'not in canonical form' };
  if (hashOf(entry) !== entry.hash) return { problem: 'hash does not match the entry' };
  return { entry };
}
