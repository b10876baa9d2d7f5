// Encoder and decoder for the framing spoken by the in-qube services
// (src/qube/). A message is a header of `key value` lines opened by
// `qmcp 1` and closed by an empty line, then raw bytes. Arbitrary strings
// travel base64-encoded so that POSIX sh can parse the header with `read -r`.

import { QmcpError } from './errors.js';

export const INQUBE_PROTOCOL_VERSION = 1;

const MAGIC = 'qmcp';
const NEWLINE = 0x0a;

/** Raised when a service answers with `status error`, or with a malformed reply. */
export class InQubeError extends QmcpError {
  readonly code = 'ERR_QMCP_IN_QUBE';
  /** The service's own error name (`not_found`, `too_large`, ...), or `bad_reply`. */
  readonly kind: string;

  constructor(kind: string, message: string) {
    super(message);
    this.kind = kind;
  }
}

export type Bytes = string | Uint8Array;

type HeaderField = readonly [key: string, value: string];

function toBuffer(value: Bytes): Buffer {
  return typeof value === 'string' ? Buffer.from(value, 'utf8') : Buffer.from(value);
}

// Arguments and paths cannot hold NUL in a process's argv or a file name.
function encodeText(value: Bytes, what: string): string {
  const buf = toBuffer(value);
  if (buf.includes(0)) throw new TypeError(`${what} must not contain a NUL byte`);
  return buf.toString('base64');
}

function encodeCount(value: number, what: string): string {
  if (!Number.isSafeInteger(value) || value < 0) throw new TypeError(`${what} must be a non-negative integer`);
  return String(value);
}

function encodeMessage(fields: readonly HeaderField[], body?: Bytes): Buffer {
  const lines = [`${MAGIC} ${INQUBE_PROTOCOL_VERSION}`, ...fields.map(([k, v]) => `${k} ${v}`), '', ''];
  const header = Buffer.from(lines.join('\n'), 'ascii');
  return body === undefined ? header : Buffer.concat([header, toBuffer(body)]);
}

/** A decoded reply: header fields (last value wins) and the bytes after the header. */
export interface Reply {
  readonly fields: ReadonlyMap<string, string>;
  readonly body: Buffer;
}

export function decodeReply(data: Uint8Array): Reply {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const fields = new Map<string, string>();
  let at = 0;
  let first = true;
  for (;;) {
    const end = buf.indexOf(NEWLINE, at);
    if (end < 0) throw new InQubeError('bad_reply', 'reply header is not terminated');
    const line = buf.subarray(at, end).toString('latin1');
    at = end + 1;
    if (first) {
      if (line !== `${MAGIC} ${INQUBE_PROTOCOL_VERSION}`) throw new InQubeError('bad_reply', 'reply is not a qmcp version 1 message');
      first = false;
      continue;
    }
    if (line === '') break;
    const space = line.indexOf(' ');
    if (space < 0) fields.set(line, '');
    else fields.set(line.slice(0, space), line.slice(space + 1));
  }
  const reply: Reply = { fields, body: buf.subarray(at) };
  if (fields.get('status') === 'error') {
    throw new InQubeError(fields.get('error') ?? 'unknown', decodeText(reply, 'message') || 'the service reported an error');
  }
  if (fields.get('status') !== 'ok') throw new InQubeError('bad_reply', 'reply has no status');
  return reply;
}

/**
 * A request's header fields in order and its body, or null when it is not a
 * qmcp version 1 message. Requests are read back only to be checked (a
 * plan's step in dom0): the decoders below accept exactly what the encoders
 * write, so a request is its one canonical form.
 */
function decodeRequestMessage(data: Buffer): { fields: [string, string][]; body: Buffer } | null {
  const fields: [string, string][] = [];
  let at = 0;
  for (let first = true; ; first = false) {
    const end = data.indexOf(NEWLINE, at);
    if (end < 0) return null;
    const line = data.subarray(at, end).toString('latin1');
    at = end + 1;
    if (first) {
      if (line !== `${MAGIC} ${INQUBE_PROTOCOL_VERSION}`) return null;
      continue;
    }
    if (line === '') return { fields, body: data.subarray(at) };
    const space = line.indexOf(' ');
    if (space < 1) return null;
    fields.push([line.slice(0, space), line.slice(space + 1)]);
  }
}

/** The request an encoder wrote, if re-encoding it gives the same bytes; else null. */
function canonical<T>(data: Buffer, request: T | null, encode: (r: T) => Buffer): T | null {
  if (request === null) return null;
  try {
    return encode(request).equals(data) ? request : null;
  } catch {
    return null;
  }
}

function values(fields: readonly [string, string][], key: string): string[] {
  return fields.filter(([k]) => k === key).map(([, v]) => v);
}

function fromBase64(value: string | undefined): Buffer | null {
  return value === undefined ? null : Buffer.from(value, 'base64');
}

function countOf(value: string | undefined): number | undefined {
  return value !== undefined && /^(0|[1-9][0-9]{0,14})$/.test(value) ? Number(value) : undefined;
}

function decodeText(reply: Reply, key: string): string {
  return Buffer.from(reply.fields.get(key) ?? '', 'base64').toString('utf8');
}

function decodeCount(reply: Reply, key: string): number {
  const raw = reply.fields.get(key);
  if (raw === undefined || !/^[0-9]{1,15}$/.test(raw)) throw new InQubeError('bad_reply', `reply field ${key} is missing or not a count`);
  return Number(raw);
}

function decodeFlag(reply: Reply, key: string): boolean {
  const raw = reply.fields.get(key);
  if (raw !== '0' && raw !== '1') throw new InQubeError('bad_reply', `reply field ${key} is not a flag`);
  return raw === '1';
}

function takeBytes(reply: Reply, offset: number, length: number): Buffer {
  if (offset + length > reply.body.length) throw new InQubeError('bad_reply', 'reply body is shorter than its header says');
  return reply.body.subarray(offset, offset + length);
}

// qmcp.Exec

/** Bounds on the environment a command is given, checked again by the service. */
export const EXEC_MAX_ENV = 64;
export const EXEC_MAX_ENV_BYTES = 32768;
/** An environment variable's name, as POSIX sh can export it. */
export const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** A user name as useradd takes it. */
export const USER_NAME = /^[a-z_][a-z0-9_-]{0,31}$/;

export interface ExecRequest {
  /** The command as an argument vector (first element looked up on PATH). */
  readonly argv?: readonly Bytes[];
  /** The command as a shell string, run with `sh -c`. */
  readonly shell?: Bytes;
  readonly stdin?: Bytes;
  /** Seconds before the command is stopped; 0 or absent means no limit. */
  readonly timeoutSeconds?: number;
  /** Bytes of each output stream in the reply, its head and its tail. */
  readonly outputLimit?: number;
  /** The user it runs as; absent: the qube's default user. */
  readonly user?: string;
  /** Its working directory, absolute; absent: the user's home. */
  readonly cwd?: Bytes;
  /** `NAME=VALUE` entries added to its environment. */
  readonly env?: readonly Bytes[];
}

/** One output stream: its first and last bytes, and how much there was. */
export interface StreamShape {
  readonly head: Buffer;
  /** Empty unless bytes were left out between head and tail. */
  readonly tail: Buffer;
  readonly total: number;
  /** Lines, a last one without its newline included. */
  readonly lines: number;
}

export interface ExecResult {
  readonly exitStatus: number;
  readonly timedOut: boolean;
  readonly stdout: StreamShape;
  readonly stderr: StreamShape;
  /** The directory in the qube holding both streams whole, when one was longer than the limit. */
  readonly saved: string | null;
}

/** Whether bytes of the stream were left out of the reply. */
export function cut(stream: StreamShape): boolean {
  return stream.head.length + stream.tail.length < stream.total;
}

function encodeEnvEntry(entry: Bytes): string {
  const buf = toBuffer(entry);
  const eq = buf.indexOf(0x3d);
  if (eq < 0 || !ENV_NAME.test(buf.subarray(0, eq).toString('latin1')) || buf.length > EXEC_MAX_ENV_BYTES) {
    throw new TypeError('an env entry must be NAME=VALUE with a shell name, within the size bound');
  }
  return encodeText(buf, 'an env entry');
}

export function encodeExecRequest(request: ExecRequest): Buffer {
  const fields: HeaderField[] = [];
  if ((request.argv === undefined) === (request.shell === undefined)) {
    throw new TypeError('give exactly one of argv and shell');
  }
  if (request.argv !== undefined) {
    if (request.argv.length === 0) throw new TypeError('argv must not be empty');
    for (const arg of request.argv) fields.push(['argv', encodeText(arg, 'an argument')]);
  }
  if (request.shell !== undefined) fields.push(['shell', encodeText(request.shell, 'the shell command')]);
  fields.push(['timeout', encodeCount(request.timeoutSeconds ?? 0, 'timeoutSeconds')]);
  if (request.outputLimit !== undefined) fields.push(['limit', encodeCount(request.outputLimit, 'outputLimit')]);
  if (request.user !== undefined) {
    if (!USER_NAME.test(request.user)) throw new TypeError('not a user name');
    fields.push(['user', request.user]);
  }
  if (request.cwd !== undefined) {
    if (toBuffer(request.cwd)[0] !== 0x2f) throw new TypeError('cwd must be absolute');
    fields.push(['cwd', encodeText(request.cwd, 'cwd')]);
  }
  const env = request.env ?? [];
  if (env.length > EXEC_MAX_ENV) throw new TypeError('too many env entries');
  for (const entry of env) fields.push(['env', encodeEnvEntry(entry)]);
  return encodeMessage(fields, request.stdin ?? '');
}

function decodeStream(reply: Reply, name: string, at: number): StreamShape {
  const headSize = decodeCount(reply, `${name}_head`);
  const tailSize = decodeCount(reply, `${name}_tail`);
  const total = decodeCount(reply, `${name}_total`);
  if (headSize + tailSize > total) throw new InQubeError('bad_reply', `reply sends more of ${name} than it had`);
  return {
    head: takeBytes(reply, at, headSize),
    tail: takeBytes(reply, at + headSize, tailSize),
    total,
    lines: decodeCount(reply, `${name}_lines`),
  };
}

export function decodeExecReply(data: Uint8Array): ExecResult {
  const reply = decodeReply(data);
  const stdout = decodeStream(reply, 'stdout', 0);
  const stderr = decodeStream(reply, 'stderr', stdout.head.length + stdout.tail.length);
  const saved = reply.fields.has('saved') ? decodeText(reply, 'saved') : null;
  return { exitStatus: decodeCount(reply, 'exit'), timedOut: decodeFlag(reply, 'timed_out'), stdout, stderr, saved };
}

/** The exec request DATA encodes, or null when it is not one encodeExecRequest writes. */
export function decodeExecRequest(data: Buffer): ExecRequest | null {
  const m = decodeRequestMessage(data);
  if (!m) return null;
  const argv = values(m.fields, 'argv').map((v) => Buffer.from(v, 'base64'));
  const shell = fromBase64(values(m.fields, 'shell')[0]);
  const timeoutSeconds = countOf(values(m.fields, 'timeout')[0]);
  const limit = countOf(values(m.fields, 'limit')[0]);
  const user = values(m.fields, 'user')[0];
  const cwd = fromBase64(values(m.fields, 'cwd')[0]);
  const env = values(m.fields, 'env').map((v) => Buffer.from(v, 'base64'));
  if (timeoutSeconds === undefined) return null;
  const request: ExecRequest = {
    ...(argv.length > 0 ? { argv } : {}),
    ...(shell !== null ? { shell } : {}),
    stdin: m.body,
    timeoutSeconds,
    ...(limit !== undefined ? { outputLimit: limit } : {}),
    ...(user !== undefined ? { user } : {}),
    ...(cwd !== null ? { cwd } : {}),
    ...(env.length > 0 ? { env } : {}),
  };
  return canonical(data, request, encodeExecRequest);
}

// qmcp.ReadFile

export interface ReadFileRequest {
  readonly path: Bytes;
  readonly limit?: number;
  /** Bytes of the file skipped before the ones returned. */
  readonly offset?: number;
}

export interface ReadFileResult {
  /** The file's full size (for special files, the bytes up to those read). */
  readonly size: number;
  readonly truncated: boolean;
  readonly content: Buffer;
}

export function encodeReadFileRequest(request: ReadFileRequest): Buffer {
  const fields: HeaderField[] = [['path', encodeText(request.path, 'the path')]];
  if (request.limit !== undefined) fields.push(['limit', encodeCount(request.limit, 'limit')]);
  if (request.offset !== undefined) fields.push(['offset', encodeCount(request.offset, 'offset')]);
  return encodeMessage(fields);
}

export function decodeReadFileReply(data: Uint8Array): ReadFileResult {
  const reply = decodeReply(data);
  return {
    size: decodeCount(reply, 'size'),
    truncated: decodeFlag(reply, 'truncated'),
    content: takeBytes(reply, 0, decodeCount(reply, 'length')),
  };
}

/** The read request DATA encodes, or null when it is not one encodeReadFileRequest writes. */
export function decodeReadFileRequest(data: Buffer): ReadFileRequest | null {
  const m = decodeRequestMessage(data);
  const path = fromBase64(m ? values(m.fields, 'path')[0] : undefined);
  if (!m || path === null || m.body.length > 0) return null;
  const limit = countOf(values(m.fields, 'limit')[0]);
  const offset = countOf(values(m.fields, 'offset')[0]);
  const request = { path, ...(limit !== undefined ? { limit } : {}), ...(offset !== undefined ? { offset } : {}) };
  return canonical(data, request, encodeReadFileRequest);
}

// qmcp.ListDir

export interface ListDirRequest {
  readonly path: Bytes;
  /** Entries returned at most. */
  readonly limit?: number;
}

/** What a directory entry or a stat says a path is. */
export type EntryType = 'file' | 'directory' | 'link' | 'fifo' | 'socket' | 'char' | 'block' | 'other';

const ENTRY_TYPES: readonly string[] = ['file', 'directory', 'link', 'fifo', 'socket', 'char', 'block', 'other'];

export interface DirEntry {
  readonly name: Buffer;
  readonly type: EntryType;
  readonly size: number;
  /** Permission bits. */
  readonly mode: number;
  /** Seconds since the epoch. */
  readonly mtime: number;
}

export interface ListDirResult {
  /** Entries in the directory, of which `entries` holds the first in byte order of names. */
  readonly total: number;
  readonly entries: readonly DirEntry[];
}

export function encodeListDirRequest(request: ListDirRequest): Buffer {
  const fields: HeaderField[] = [['path', encodeText(request.path, 'the path')]];
  if (request.limit !== undefined) fields.push(['limit', encodeCount(request.limit, 'limit')]);
  return encodeMessage(fields);
}

const ENTRY_LINE = /^([a-z]+) (0|[1-9][0-9]{0,18}) ([0-7]{4}) (-?[0-9]{1,15}) ([1-9][0-9]{0,5})$/;

export function decodeListDirReply(data: Uint8Array): ListDirResult {
  const reply = decodeReply(data);
  const total = decodeCount(reply, 'total');
  const count = decodeCount(reply, 'count');
  const body = reply.body;
  const entries: DirEntry[] = [];
  let at = 0;
  for (let i = 0; i < count; i++) {
    const end = body.indexOf(NEWLINE, at);
    const m = end < 0 ? null : ENTRY_LINE.exec(body.subarray(at, end).toString('latin1'));
    if (m === null || !ENTRY_TYPES.includes(m[1] ?? '')) throw new InQubeError('bad_reply', 'malformed directory entry');
    const length = Number(m[5]);
    const name = body.subarray(end + 1, end + 1 + length);
    if (name.length !== length || body[end + 1 + length] !== NEWLINE) throw new InQubeError('bad_reply', 'malformed directory entry');
    entries.push({ name: Buffer.from(name), type: m[1] as EntryType, size: Number(m[2]), mode: parseInt(m[3] ?? '0', 8), mtime: Number(m[4]) });
    at = end + 2 + length;
  }
  if (count > total) throw new InQubeError('bad_reply', 'more entries than the directory has');
  return { total, entries };
}

/** The listing request DATA encodes, or null when it is not one encodeListDirRequest writes. */
export function decodeListDirRequest(data: Buffer): ListDirRequest | null {
  const m = decodeRequestMessage(data);
  const path = fromBase64(m ? values(m.fields, 'path')[0] : undefined);
  if (!m || path === null || m.body.length > 0) return null;
  const limit = countOf(values(m.fields, 'limit')[0]);
  return canonical(data, { path, ...(limit !== undefined ? { limit } : {}) }, encodeListDirRequest);
}

// qmcp.Stat

export interface StatRequest {
  readonly path: Bytes;
}

export interface StatResult {
  readonly type: EntryType;
  readonly size: number;
  readonly mode: number;
  readonly mtime: number;
  readonly uid: number;
  readonly gid: number;
  /** A link's target; null for anything else. */
  readonly target: Buffer | null;
}

export function encodeStatRequest(request: StatRequest): Buffer {
  return encodeMessage([['path', encodeText(request.path, 'the path')]]);
}

export function decodeStatReply(data: Uint8Array): StatResult {
  const reply = decodeReply(data);
  const type = reply.fields.get('type') ?? '';
  const mode = reply.fields.get('mode') ?? '';
  const mtime = reply.fields.get('mtime') ?? '';
  if (!ENTRY_TYPES.includes(type) || !/^[0-7]{4}$/.test(mode) || !/^-?[0-9]{1,15}$/.test(mtime)) {
    throw new InQubeError('bad_reply', 'malformed stat reply');
  }
  return {
    type: type as EntryType,
    size: decodeCount(reply, 'size'),
    mode: parseInt(mode, 8),
    mtime: Number(mtime),
    uid: decodeCount(reply, 'uid'),
    gid: decodeCount(reply, 'gid'),
    target: type === 'link' ? Buffer.from(reply.fields.get('target') ?? '', 'base64') : null,
  };
}

/** The stat request DATA encodes, or null when it is not one encodeStatRequest writes. */
export function decodeStatRequest(data: Buffer): StatRequest | null {
  const m = decodeRequestMessage(data);
  const path = fromBase64(m ? values(m.fields, 'path')[0] : undefined);
  if (!m || path === null || m.body.length > 0) return null;
  return canonical(data, { path }, encodeStatRequest);
}

// qmcp.WriteFile

export interface WriteFileRequest {
  readonly path: Bytes;
  readonly content: Bytes;
  /** Octal permission bits, e.g. 0o644. */
  readonly mode?: number;
  readonly createParents?: boolean;
  readonly limit?: number;
}

export interface WriteFileResult {
  readonly size: number;
}

export function encodeWriteFileRequest(request: WriteFileRequest): Buffer {
  const mode = request.mode ?? 0o644;
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777) throw new TypeError('mode must be within 0 and 0o7777');
  const fields: HeaderField[] = [
    ['path', encodeText(request.path, 'the path')],
    ['mode', mode.toString(8).padStart(4, '0')],
    ['parents', request.createParents === true ? '1' : '0'],
  ];
  if (request.limit !== undefined) fields.push(['limit', encodeCount(request.limit, 'limit')]);
  return encodeMessage(fields, request.content);
}

export function decodeWriteFileReply(data: Uint8Array): WriteFileResult {
  return { size: decodeCount(decodeReply(data), 'size') };
}

/** The write request DATA encodes, or null when it is not one encodeWriteFileRequest writes. */
export function decodeWriteFileRequest(data: Buffer): WriteFileRequest | null {
  const m = decodeRequestMessage(data);
  const path = fromBase64(m ? values(m.fields, 'path')[0] : undefined);
  const mode = m ? values(m.fields, 'mode')[0] : undefined;
  if (!m || path === null || mode === undefined || !/^[0-7]{4}$/.test(mode)) return null;
  const limit = countOf(values(m.fields, 'limit')[0]);
  const request: WriteFileRequest = {
    path,
    content: m.body,
    mode: parseInt(mode, 8),
    createParents: values(m.fields, 'parents')[0] === '1',
    ...(limit !== undefined ? { limit } : {}),
  };
  return canonical(data, request, encodeWriteFileRequest);
}

// qmcp.CopyTo+TARGET

export interface CopyToRequest {
  readonly paths: readonly Bytes[];
}

export interface CopyToResult {
  /** What qvm-copy-to-vm wrote on stderr. */
  readonly message: string;
  /** For a push into a sink: the name of its directory there, which the source chose. */
  readonly push?: string;
}

/** A sink push's directory name as qmcp.CopyTo chooses it and qmcp.SinkPush takes it: TIME.RANDOM. */
export const SINK_PUSH = /^[0-9]{8}T[0-9]{6}Z\.[0-9a-f]{16}$/;

export function encodeCopyToRequest(request: CopyToRequest): Buffer {
  if (request.paths.length === 0) throw new TypeError('paths must not be empty');
  return encodeMessage(request.paths.map((p) => ['path', encodeText(p, 'a path')] as const));
}

/** Throws InQubeError with code `copy_failed` when qvm-copy-to-vm failed. */
export function decodeCopyToReply(data: Uint8Array): CopyToResult {
  const reply = decodeReply(data);
  const message = decodeText(reply, 'message');
  const push = reply.fields.get('push');
  if (push === undefined) return { message };
  if (!SINK_PUSH.test(push)) throw new InQubeError('bad_reply', 'reply has a malformed push name');
  return { message, push };
}

/** The copy request DATA encodes, or null when it is not one encodeCopyToRequest writes. */
export function decodeCopyToRequest(data: Buffer): CopyToRequest | null {
  const m = decodeRequestMessage(data);
  if (!m || m.body.length > 0) return null;
  return canonical(data, { paths: values(m.fields, 'path').map((v) => Buffer.from(v, 'base64')) }, encodeCopyToRequest);
}

// Background jobs: qmcp.JobStart (an exec request), qmcp.JobOutput,
// qmcp.JobWait, qmcp.JobKill, qmcp.JobList.

/** A job id as the in-qube service chooses it. */
export const JOB_ID = /^[0-9a-f]{12}$/;

export type JobStream = 'stdout' | 'stderr';
export type JobSignal = 'TERM' | 'KILL' | 'INT' | 'HUP';

function jobIdOf(value: string | undefined): string {
  if (value === undefined || !JOB_ID.test(value)) throw new InQubeError('bad_reply', 'reply has no valid job id');
  return value;
}

function checkedJobId(job: string): string {
  if (!JOB_ID.test(job)) throw new TypeError('a job id is 12 lower-case hex digits');
  return job;
}

/** The exit status once a job has ended; null while it runs. */
function exitOf(reply: Reply, ended: boolean): number | null {
  return ended ? decodeCount(reply, 'exit') : null;
}

/** qmcp.JobStart takes the request of qmcp.Exec (its timeout and limit do not apply) and answers the job's id. */
export function decodeJobStartReply(data: Uint8Array): { readonly job: string } {
  return { job: jobIdOf(decodeReply(data).fields.get('job')) };
}

export interface JobOutputRequest {
  readonly job: string;
  readonly stream: JobStream;
  readonly offset: number;
  readonly limit: number;
}

export interface JobOutputResult {
  /** The bytes of the stream so far (final once ended). */
  readonly size: number;
  readonly ended: boolean;
  readonly exitStatus: number | null;
  readonly content: Buffer;
}

export function encodeJobOutputRequest(request: JobOutputRequest): Buffer {
  return encodeMessage([
    ['job', checkedJobId(request.job)],
    ['stream', request.stream],
    ['offset', encodeCount(request.offset, 'offset')],
    ['limit', encodeCount(request.limit, 'limit')],
  ]);
}

export function decodeJobOutputReply(data: Uint8Array): JobOutputResult {
  const reply = decodeReply(data);
  const ended = decodeFlag(reply, 'ended');
  return { size: decodeCount(reply, 'size'), ended, exitStatus: exitOf(reply, ended), content: takeBytes(reply, 0, decodeCount(reply, 'length')) };
}

export interface JobWaitResult {
  readonly ended: boolean;
  readonly exitStatus: number | null;
  readonly stdoutSize: number;
  readonly stderrSize: number;
}

export function encodeJobWaitRequest(request: { readonly job: string; readonly timeoutSeconds: number }): Buffer {
  return encodeMessage([
    ['job', checkedJobId(request.job)],
    ['timeout', encodeCount(request.timeoutSeconds, 'timeoutSeconds')],
  ]);
}

export function decodeJobWaitReply(data: Uint8Array): JobWaitResult {
  const reply = decodeReply(data);
  const ended = decodeFlag(reply, 'ended');
  return { ended, exitStatus: exitOf(reply, ended), stdoutSize: decodeCount(reply, 'stdout_size'), stderrSize: decodeCount(reply, 'stderr_size') };
}

export function encodeJobKillRequest(request: { readonly job: string; readonly signal: JobSignal }): Buffer {
  return encodeMessage([
    ['job', checkedJobId(request.job)],
    ['signal', request.signal],
  ]);
}

/** Whether the job had ended already (then nothing was signalled). */
export function decodeJobKillReply(data: Uint8Array): { readonly ended: boolean } {
  return { ended: decodeFlag(decodeReply(data), 'ended') };
}

export interface JobEntry {
  readonly job: string;
  readonly ended: boolean;
  readonly exitStatus: number | null;
  /** Seconds since the epoch, by the qube's clock. */
  readonly started: number;
  /** The command as given: the shell string, or the arguments joined by spaces. */
  readonly command: string;
}

export function encodeJobListRequest(): Buffer {
  return encodeMessage([]);
}

const JOB_LINE = /^([0-9a-f]{12}) ([01]) (-|[0-9]{1,15}) ([0-9]{1,15}) ([A-Za-z0-9+/]*={0,2})$/;

/** The jobs, oldest first; a line the qube garbled is a bad reply. */
export function decodeJobListReply(data: Uint8Array): JobEntry[] {
  const text = decodeReply(data).body.toString('latin1');
  const jobs: JobEntry[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const m = JOB_LINE.exec(line);
    if (m === null || (m[2] === '1') === (m[3] === '-')) throw new InQubeError('bad_reply', 'job list line is malformed');
    const [, job = '', ended, status = '-', started = '0', command = ''] = m;
    jobs.push({ job, ended: ended === '1', exitStatus: status === '-' ? null : Number(status), started: Number(started), command: Buffer.from(command, 'base64').toString('utf8') });
  }
  return jobs.sort((a, b) => a.started - b.started || a.job.localeCompare(b.job));
}

/** The header fields of a job request (JobOutput, JobWait, JobKill), or null when DATA is none. */
export function decodeJobRequest(data: Buffer): ReadonlyMap<string, string> | null {
  const m = decodeRequestMessage(data);
  return m === null || m.body.length > 0 ? null : new Map(m.fields);
}

// qmcp.PortForward+TARGET: qvm-connect-tcp as a job (its reply is qmcp.JobStart's).

export interface PortForwardRequest {
  /** The port on the target's localhost. */
  readonly port: number;
  /** The port the source listens on; the service takes PORT when absent. */
  readonly localPort?: number;
}

/** The ports qrexec's TCP services take; a local port also at least this (below it qvm-connect-tcp needs sudo). */
export const TCP_PORT_MAX = 65535;
export const LOCAL_PORT_MIN = 1024;

export function encodePortForwardRequest(request: PortForwardRequest): Buffer {
  const port = encodeCount(request.port, 'port');
  if (request.port < 1 || request.port > TCP_PORT_MAX) throw new TypeError('port must be 1 to 65535');
  const fields: HeaderField[] = [['port', port]];
  if (request.localPort !== undefined) {
    if (!Number.isSafeInteger(request.localPort) || request.localPort < LOCAL_PORT_MIN || request.localPort > TCP_PORT_MAX) throw new TypeError('localPort must be 1024 to 65535');
    fields.push(['local', String(request.localPort)]);
  }
  return encodeMessage(fields);
}

/** The job the forward runs as; InQubeError `refused` when qrexec refused the target. */
export const decodePortForwardReply = decodeJobStartReply;

/** The forward request DATA encodes, or null when it is not one encodePortForwardRequest writes. */
export function decodePortForwardRequest(data: Buffer): PortForwardRequest | null {
  const m = decodeRequestMessage(data);
  if (!m || m.body.length > 0) return null;
  const port = countOf(values(m.fields, 'port')[0]);
  const local = values(m.fields, 'local');
  const localPort = local.length === 0 ? undefined : countOf(local[0]);
  if (port === undefined || (local.length > 0 && localPort === undefined)) return null;
  return canonical(data, { port, ...(localPort === undefined ? {} : { localPort }) }, encodePortForwardRequest);
}
