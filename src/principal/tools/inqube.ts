/** Tools of the `exec` capability that run inside a qube, as root, through the qmcp.* in-qube services. */
import * as z from 'zod';
import {
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
} from '../../shared/inqube-protocol.js';
import { inQubeExact, inQubeResult, send, type CallContext, type ExactCall, type Exited } from '../calls.js';
import { Actionable, Failed } from '../results.js';
import { encodeBytes, Encoding, MIB, QubeName, QubePath } from '../schemas.js';
import { REFUSABLE, UNTRUSTED } from '../texts.js';
import { callTool } from './exact.js';

/** Room for the reply header around the bytes the service returns (qmcp.Exec's beat lines: 18 KB at the longest timeout). */
const HEADER_ROOM = 64 * 1024;

function bytesOf(text: string, encoding: 'utf8' | 'base64'): Buffer {
  if (encoding === 'utf8') return Buffer.from(text, 'utf8');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) throw new Actionable('The content is not valid base64.');
  return Buffer.from(text, 'base64');
}

/** The command fields of qube_run, shared with the one-shot disposable run. */
export const commandFields = {
  argv: z.array(z.string().max(65536)).min(1).max(1024).optional().describe('the command as an argument vector (first element looked up on PATH)'),
  shell: z.string().min(1).max(65536).optional().describe('the command as a shell string, run with /bin/sh -c'),
  stdin: z.string().max(8 * MIB).optional().describe("the command's standard input"),
  stdin_encoding: Encoding.optional(),
  timeout_seconds: z.number().int().min(1).max(3600).optional().describe('seconds before the command is stopped (default 120)'),
  output_limit: z.number().int().min(0).max(8 * MIB).optional().describe('bytes kept of stdout and of stderr each (default 1 MiB)'),
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
  stderr: z.string(),
  stderr_encoding: Encoding,
  stderr_truncated: z.boolean(),
});

export const qubeRun = callTool({
  name: 'qube_run',
  title: 'Run a command in a qube',
  operation: 'run',
  also: ['job.start'],
  description:
    'Run one command as root inside a qube: give exactly one of argv or shell. Returns the exit status, stdout and stderr separately (UTF-8, or base64 when not valid UTF-8), and flags for a timeout and for truncated output. The qube must be running (qube_start first): a call into a halted qube is refused like any other. A running qube keeps what a call leaves: files in /tmp, and processes left in the background, but a process that keeps the command\'s stdout or stderr open keeps the call waiting: redirect its output (`server >log 2>&1 &`), or give background: true, which returns only a job id.' +
    REFUSABLE +
    UNTRUSTED,
  input: RunInput,
  // a background run returns only its job's id
  output: RunOutput.partial().extend({ job: z.string().optional() }),
  long: true,
  call: (input) => (input.background === true ? jobStartCall(input.qube, input) : runCall(input.qube, input)),
  result: (call, reply) => (call.operation === 'job.start' ? inQubeResult(reply, decodeJobStartReply) : runResult(call, reply)),
});

/** The command as argv or shell, checked as the request encoder needs it. */
function commandOf(input: CommandInput): { argv: readonly string[] } | { shell: string } {
  if ((input.argv === undefined) === (input.shell === undefined)) throw new Actionable('Give exactly one of argv and shell.');
  const words = input.argv ?? [input.shell ?? ''];
  if (words.some((w) => w.includes('\0'))) throw new Actionable('Arguments cannot contain NUL bytes.');
  return input.argv !== undefined ? { argv: input.argv } : { shell: input.shell ?? '' };
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
  const limit = input.output_limit ?? MIB;
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
  const out = encodeBytes(r.stdout);
  const err = encodeBytes(r.stderr);
  return {
    exit_status: r.exitStatus,
    timed_out: r.timedOut,
    stdout: out.text,
    stdout_encoding: out.encoding,
    stdout_truncated: r.stdoutTruncated,
    stderr: err.text,
    stderr_encoding: err.encoding,
    stderr_truncated: r.stderrTruncated,
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

/** The path a read or write request names, as the tool was given it. */
function requestPath(request: { path: string | Uint8Array } | null): string {
  if (request === null) throw new Failed();
  return Buffer.from(request.path).toString('utf8');
}

export const qubeWriteFile = callTool({
  name: 'qube_write_file',
  title: 'Write a file into a qube',
  operation: 'file.write',
  description: 'Replace one file inside a qube, atomically, as root. The qube must be running (qube_start first): a call into a halted qube is refused like any other.' + REFUSABLE,
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

const ReadInput = z.strictObject({
  qube: QubeName,
  path: QubePath,
  limit: z.number().int().min(0).max(8 * MIB).optional().describe('bytes returned at most (default 1 MiB)'),
});

export const qubeReadFile = callTool({
  name: 'qube_read_file',
  title: 'Read a file from a qube',
  operation: 'file.read',
  description:
    "Read one file from inside a qube. Content is UTF-8 text, or base64 when it is not valid UTF-8 (see 'encoding'); 'size' is the file's full size and 'truncated' says whether the limit cut it. The qube must be running (qube_start first): a call into a halted qube is refused like any other." +
    REFUSABLE +
    UNTRUSTED,
  input: ReadInput,
  output: z.object({ path: z.string(), size: z.number(), truncated: z.boolean(), encoding: Encoding, content: z.string() }),
  call: (input) => {
    const limit = input.limit ?? MIB;
    const request = encodeReadFileRequest({ path: input.path, limit });
    return inQubeExact(input.qube, 'file.read', '', request, { maxOutput: limit + HEADER_ROOM });
  },
  result: (call, reply) => {
    const r = inQubeResult(reply, decodeReadFileReply);
    const c = encodeBytes(r.content);
    return { path: requestPath(decodeReadFileRequest(call.payload)), size: r.size, truncated: r.truncated, encoding: c.encoding, content: c.text };
  },
});

const CopyInput = z.strictObject({
  source: QubeName,
  target: QubeName,
  paths: z.array(QubePath).min(1).max(64).describe('files or directories in the source qube'),
});

export const qubeCopy = callTool({
  name: 'qube_copy',
  title: 'Copy files between qubes',
  operation: 'copy',
  description:
    "Copy files from a source qube to a target qube; they land in the target's /home/user/QubesIncoming/<source>/ (commands run as root, whose ~ is /root). Some pairs need the operator's approval in a dom0 dialog, so the call can wait. A sink (a write-only qube you may push to but not see) answers nothing: a push to it always returns the same result, which does not say whether the files arrived; each push lands in a directory of its own there. Use printable ASCII names: a sink keeps nothing of a push from the first other name on." +
    REFUSABLE,
  input: CopyInput,
  output: z.object({ source: z.string(), target: z.string(), copied: z.number() }),
  long: true,
  call: (input) => inQubeExact(input.source, 'copy', input.target, encodeCopyToRequest({ paths: input.paths }), { maxOutput: HEADER_ROOM }),
  result: (call, reply) => {
    inQubeResult(reply, decodeCopyToReply);
    const request = decodeCopyToRequest(call.payload);
    if (request === null) throw new Failed();
    return { source: call.target, target: call.argument, copied: request.paths.length };
  },
});
