/** Tools of the `exec` capability that run inside a qube through the qmcp.* in-qube services. */
import * as z from 'zod';
import {
  ENV_NAME,
  EXEC_MAX_ENV,
  EXEC_MAX_ENV_BYTES,
  USER_NAME,
  decodeCopyToReply,
  decodeCopyToRequest,
  decodeExecReply,
  decodeJobStartReply,
  decodeReadFileReply,
  decodeReadFileRequest,
  decodeWriteFileReply,
  decodeWriteFileRequest,
  encodeCopyToRequest,
  encodeExecRequest,
  encodeReadFileRequest,
  encodeWriteFileRequest,
  type ExecRequest,
} from '../../shared/inqube-protocol.js';
import { inQubeExact, inQubeResult, send, type CallContext, type ExactCall, type Exited } from '../calls.js';
import { shapeStream } from '../output-shape.js';
import { Actionable, Failed } from '../results.js';
import { encodeBytes, Encoding, MIB, QubeName, QubePath } from '../schemas.js';
import { REFUSABLE, UNTRUSTED } from '../texts.js';
import { callTool } from './exact.js';

/** Room for the reply header around the bytes the service returns (qmcp.Exec's beat lines: 18 KB at the longest timeout). */
export const HEADER_ROOM = 64 * 1024;

function bytesOf(text: string, encoding: 'utf8' | 'base64'): Buffer {
  if (encoding === 'utf8') return Buffer.from(text, 'utf8');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) throw new Actionable('The content is not valid base64.');
  return Buffer.from(text, 'base64');
}

/** Bytes of each output stream a result carries by default: room in a model's context. */
export const DEFAULT_OUTPUT_LIMIT = 32 * 1024;
const MAX_OUTPUT_LIMIT = MIB;

/** The command fields of qube_run, shared with the one-shot disposable run. */
export const commandFields = {
  argv: z.array(z.string().max(65536)).min(1).max(1024).optional().describe('the command as an argument vector (first element looked up on PATH)'),
  shell: z.string().min(1).max(65536).optional().describe('the command as a shell string, run with /bin/sh -c'),
  stdin: z.string().max(8 * MIB).optional().describe("the command's standard input"),
  stdin_encoding: Encoding.optional(),
  timeout_seconds: z.number().int().min(1).max(3600).optional().describe('seconds before the command is stopped (default 120)'),
  output_limit: z
    .number()
    .int()
    .min(0)
    .max(MAX_OUTPUT_LIMIT)
    .optional()
    .describe(`bytes of stdout and of stderr each returned, half from the start and half from the end (default ${DEFAULT_OUTPUT_LIMIT})`),
  user: z
    .string()
    .regex(USER_NAME, 'a user name')
    .optional()
    .describe("the user it runs as: the qube's default user (usually 'user') unless given; 'root' for root"),
  cwd: z.string().min(1).max(4096).regex(/^\/[^\0]*$/, 'an absolute path without NUL bytes').optional().describe("the working directory (default: the user's home)"),
  env: z
    .record(z.string().regex(ENV_NAME, 'a shell variable name').max(256), z.string().max(EXEC_MAX_ENV_BYTES).regex(/^[^\0]*$/, 'no NUL bytes'))
    .refine((e) => Object.keys(e).length <= EXEC_MAX_ENV, `at most ${EXEC_MAX_ENV} variables`)
    .optional()
    .describe(`variables added to the environment (at most ${EXEC_MAX_ENV})`),
};

const RunInput = z.strictObject({
  qube: QubeName,
  ...commandFields,
  background: z.boolean().optional().describe('start the command as a background job and return its id at once (job_output, job_wait, job_kill, job_list); it runs until it ends, job_kill, or the qube stops'),
});

type CommandInput = z.output<z.ZodObject<typeof commandFields>>;

export const RunOutput = z.object({
  exit_status: z.number(),
  timed_out: z.boolean(),
  stdout: z.string(),
  stdout_encoding: Encoding,
  stdout_truncated: z.boolean(),
  stdout_bytes: z.number(),
  stdout_lines: z.number(),
  stdout_path: z.string().nullable(),
  stderr: z.string(),
  stderr_encoding: Encoding,
  stderr_truncated: z.boolean(),
  stderr_bytes: z.number(),
  stderr_lines: z.number(),
  stderr_path: z.string().nullable(),
});

export const qubeRun = callTool({
  name: 'qube_run',
  title: 'Run a command in a qube',
  operation: 'run',
  also: ['job.start'],
  description:
    "Run one command inside a qube: give exactly one of argv or shell. As qvm-run, it runs as the qube's default user in its home unless user (e.g. 'root') or cwd say otherwise. Returns the exit status, and stdout and stderr separately (UTF-8, or base64 when not valid UTF-8) with their bytes and lines. A stream longer than output_limit keeps its start and its end with a marker between; the whole stream is then saved in the qube at *_path, to read in pages with qube_read_file (offset, length). The qube must be running (qube_start first): a call into a halted qube is refused like any other. A running qube keeps what a call leaves: files in /tmp, and processes left in the background, but a process that keeps the command's stdout or stderr open keeps the call waiting: redirect its output (`server >log 2>&1 &`), or give background: true, which returns only a job id." +
    REFUSABLE +
    UNTRUSTED,
  input: RunInput,
  // a background run returns only its job's id
  output: RunOutput.partial().extend({ job: z.string().optional() }),
  long: true,
  call: (input) => (input.background === true ? jobStartCall(input.qube, input) : runCall(input.qube, input)),
  result: (call, reply) => (call.operation === 'job.start' ? inQubeResult(reply, decodeJobStartReply) : runResult(call, reply)),
});

/** The command as argv or shell, with its user, directory and environment, checked as the request encoder needs them. */
function commandOf(input: CommandInput): Pick<ExecRequest, 'argv' | 'shell' | 'user' | 'cwd' | 'env'> {
  if ((input.argv === undefined) === (input.shell === undefined)) throw new Actionable('Give exactly one of argv and shell.');
  const words = input.argv ?? [input.shell ?? ''];
  if (words.some((w) => w.includes('\0'))) throw new Actionable('Arguments cannot contain NUL bytes.');
  const env = Object.entries(input.env ?? {}).map(([name, value]) => `${name}=${value}`);
  if (env.some((e) => Buffer.byteLength(e) > EXEC_MAX_ENV_BYTES)) throw new Actionable(`Each environment variable is at most ${EXEC_MAX_ENV_BYTES} bytes, name and value.`);
  return {
    ...(input.argv !== undefined ? { argv: input.argv } : { shell: input.shell ?? '' }),
    ...(input.user !== undefined ? { user: input.user } : {}),
    ...(input.cwd !== undefined ? { cwd: input.cwd } : {}),
    ...(env.length > 0 ? { env } : {}),
  };
}

/** The job.start operation's call: the command of qube_run, started in the background. */
function jobStartCall(qube: string, input: CommandInput): ExactCall {
  const command = commandOf(input);
  if (input.timeout_seconds !== undefined) throw new Actionable('A background job has no timeout: end it with job_kill.');
  if (input.output_limit !== undefined) throw new Actionable('A background job keeps its output in the qube: read it with job_output.');
  const request = encodeExecRequest({ ...command, stdin: bytesOf(input.stdin ?? '', input.stdin_encoding ?? 'utf8') });
  return inQubeExact(qube, 'job.start', '', request, { maxOutput: HEADER_ROOM });
}

/** Runs one command (the run operation) and shapes its reply. */
export async function runCommand(qube: string, input: CommandInput, ctx: CallContext): Promise<z.infer<typeof RunOutput>> {
  const call = runCall(qube, input);
  return runResult(call, await send(ctx, call));
}

/** The run operation's call for one command. */
function runCall(qube: string, input: CommandInput): ExactCall {
  const command = commandOf(input);
  const timeout = input.timeout_seconds ?? 120;
  const limit = input.output_limit ?? DEFAULT_OUTPUT_LIMIT;
  const request = encodeExecRequest({
    ...command,
    stdin: bytesOf(input.stdin ?? '', input.stdin_encoding ?? 'utf8'),
    timeoutSeconds: timeout,
    outputLimit: limit,
  });
  return inQubeExact(qube, 'run', '', request, {
    maxOutput: 2 * limit + HEADER_ROOM,
    // the service stops the command itself; leave it time to answer
    timeoutMs: (timeout + 30) * 1000,
  });
}

function runResult(_call: ExactCall, reply: Exited): z.infer<typeof RunOutput> {
  const r = inQubeResult(reply, decodeExecReply);
  const out = shapeStream(r.stdout, r.saved, 'stdout');
  const err = shapeStream(r.stderr, r.saved, 'stderr');
  return {
    exit_status: r.exitStatus,
    timed_out: r.timedOut,
    stdout: out.text,
    stdout_encoding: out.encoding,
    stdout_truncated: out.truncated,
    stdout_bytes: out.bytes,
    stdout_lines: out.lines,
    stdout_path: out.path,
    stderr: err.text,
    stderr_encoding: err.encoding,
    stderr_truncated: err.truncated,
    stderr_bytes: err.bytes,
    stderr_lines: err.lines,
    stderr_path: err.path,
  };
}

const WriteInput = z.strictObject({
  qube: QubeName,
  path: QubePath,
  content: z.string().max(16 * MIB),
  encoding: Encoding.optional().describe("how content is given: 'utf8' (default) or 'base64'"),
  mode: z.number().int().min(0).max(0o7777).optional().describe('permission bits as a number, e.g. 420 for 0644 (the default)'),
  create_parents: z.boolean().optional(),
});

/** The path a request names, as the tool was given it. */
export function requestPath(request: { path: string | Uint8Array } | null): string {
  if (request === null) throw new Failed();
  return Buffer.from(request.path).toString('utf8');
}

export const qubeWriteFile = callTool({
  name: 'qube_write_file',
  title: 'Write a file into a qube',
  operation: 'file.write',
  description: 'Replace one file inside a qube, atomically, as root (the file belongs to root). The qube must be running (qube_start first): a call into a halted qube is refused like any other.' + REFUSABLE,
  input: WriteInput,
  output: z.object({ path: z.string(), size: z.number() }),
  call: (input) => {
    const content = bytesOf(input.content, input.encoding ?? 'utf8');
    const request = encodeWriteFileRequest({
      path: input.path,
      content,
      ...(input.mode !== undefined ? { mode: input.mode } : {}),
      createParents: input.create_parents ?? false,
      limit: 16 * MIB,
    });
    return inQubeExact(input.qube, 'file.write', '', request, { maxOutput: HEADER_ROOM });
  },
  result: (call, reply) => {
    const r = inQubeResult(reply, decodeWriteFileReply);
    return { path: requestPath(decodeWriteFileRequest(call.payload)), size: r.size };
  },
});

/** Bytes qube_read_file returns by default, and at most: a page that fits a model's context. */
const DEFAULT_READ_LENGTH = 64 * 1024;
const MAX_READ_LENGTH = MIB;

const ReadInput = z.strictObject({
  qube: QubeName,
  path: QubePath,
  offset: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional().describe('bytes of the file skipped first (default 0)'),
  length: z.number().int().min(0).max(MAX_READ_LENGTH).optional().describe(`bytes returned at most (default ${DEFAULT_READ_LENGTH})`),
});

export const qubeReadFile = callTool({
  name: 'qube_read_file',
  title: 'Read a file from a qube',
  operation: 'file.read',
  description:
    "Read one file from inside a qube, as root, in pages: up to length bytes from offset on. Content is UTF-8 text, or base64 when it is not valid UTF-8 (see 'encoding'); 'size' is the file's full size and 'truncated' says whether bytes remain after this page (read on from offset + length). The qube must be running (qube_start first): a call into a halted qube is refused like any other." +
    REFUSABLE +
    UNTRUSTED,
  input: ReadInput,
  output: z.object({
    path: z.string(),
    size: z.number(),
    offset: z.number(),
    length: z.number(),
    truncated: z.boolean(),
    encoding: Encoding,
    content: z.string(),
  }),
  call: (input) => {
    const limit = input.length ?? DEFAULT_READ_LENGTH;
    const request = encodeReadFileRequest({ path: input.path, limit, offset: input.offset ?? 0 });
    return inQubeExact(input.qube, 'file.read', '', request, { maxOutput: limit + HEADER_ROOM });
  },
  result: (call, reply) => {
    const r = inQubeResult(reply, decodeReadFileReply);
    const request = decodeReadFileRequest(call.payload);
    const c = encodeBytes(r.content);
    return {
      path: requestPath(request),
      size: r.size,
      offset: request?.offset ?? 0,
      length: r.content.length,
      truncated: r.truncated,
      encoding: c.encoding,
      content: c.text,
    };
  },
});

const CopyInput = z.strictObject({
  source: QubeName,
  target: QubeName,
  paths: z.array(QubePath).min(1).max(64).describe('files or directories in the source qube'),
});

/** Where Qubes puts what SOURCE sends: the receiving default user's ~/QubesIncoming/SOURCE/. */
const incomingOf = (source: string): string => `/home/user/QubesIncoming/${source}/`;

/** The name a path is sent under, as qvm-copy-to-vm and qmcp.CopyTo send it: its last component. */
function sentName(path: string): string {
  const trimmed = path.replace(/\/+$/, '');
  return trimmed === '' ? '' : trimmed.slice(trimmed.lastIndexOf('/') + 1);
}

export const qubeCopy = callTool({
  name: 'qube_copy',
  title: 'Copy files between qubes',
  operation: 'copy',
  description:
    "Copy files from a source qube to a target qube; they land in the target's /home/user/QubesIncoming/<source>/ (the default user's ~/QubesIncoming), and the result says where (`directory`, and `files`, each path's last name there). Some pairs need the operator's approval in a dom0 dialog, so the call can wait. A sink (a write-only qube you may push to but not see; qube_list names them) answers nothing: a push to it always succeeds the same way, which does not say whether the files arrived, and a halted sink is started for it. Each push lands in a directory of its own there, named in the result. Use printable ASCII names: a sink keeps nothing of a push from the first other name on." +
    REFUSABLE,
  input: CopyInput,
  output: z.object({ source: z.string(), target: z.string(), copied: z.number(), directory: z.string(), files: z.array(z.string()) }),
  long: true,
  call: (input) => inQubeExact(input.source, 'copy', input.target, encodeCopyToRequest({ paths: input.paths }), { maxOutput: HEADER_ROOM }),
  result: (call, reply) => {
    const { push } = inQubeResult(reply, decodeCopyToReply);
    const request = decodeCopyToRequest(call.payload);
    if (request === null) throw new Failed();
    const directory = incomingOf(call.target) + (push === undefined ? '' : `${push}/`);
    const files = request.paths.map((p) => directory + sentName(Buffer.from(p).toString('utf8')));
    return { source: call.target, target: call.argument, copied: request.paths.length, directory, files };
  },
});
