/**
 * Background jobs: tools of the `exec` capability served by the qmcp.Job*
 * in-qube services. A job's id is chosen inside its qube and checked here
 * in shape only; its state lives in the qube and ends with it.
 */
import * as z from 'zod';
import {
  decodeJobKillReply,
  decodeJobListReply,
  decodeJobOutputReply,
  decodeJobRequest,
  decodeJobWaitReply,
  encodeJobKillRequest,
  encodeJobListRequest,
  encodeJobOutputRequest,
  encodeJobWaitRequest,
  JOB_ID,
} from '../../shared/inqube-protocol.js';
import { inQubeExact, inQubeResult } from '../calls.js';
import { Failed } from '../results.js';
import { encodeBytes, Encoding, MIB, QubeName } from '../schemas.js';
import { REFUSABLE, UNTRUSTED } from '../texts.js';
import { callTool } from './exact.js';

/** Room for a reply's header (job_wait's beat lines: about 5 bytes a second). */
const HEADER_ROOM = 64 * 1024;
const MAX_WAIT_SECONDS = 600;

export const JobId = z.string().regex(JOB_ID, 'a job id: 12 lower-case hex digits, as qube_run with background: true returned it').describe('the job id qube_run with background: true returned');

const JobInput = { qube: QubeName, job: JobId };

const NO_JOB = " A job belongs to the qube it runs in and ends when that qube stops; an unknown id is an error naming that.";

export const jobOutput = callTool({
  name: 'job_output',
  title: "Read a background job's output",
  operation: 'job.output',
  description:
    "Read a background job's stdout or stderr from a byte offset: up to 'limit' bytes (default 64 KiB). Returns the bytes (UTF-8, or base64 when not valid UTF-8), the stream's total bytes so far, whether the job has ended and its exit status. Read on from offset + the bytes returned; an offset at or past the end returns nothing. The qube keeps a job's output in memory until it stops: send much output to a file instead (`cmd >log 2>&1`)." +
    NO_JOB +
    REFUSABLE +
    UNTRUSTED,
  input: z.strictObject({
    ...JobInput,
    stream: z.enum(['stdout', 'stderr']).optional().describe("'stdout' (the default) or 'stderr'"),
    offset: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional().describe('the first byte to return (default 0)'),
    limit: z.number().int().min(0).max(MIB).optional().describe('bytes returned at most (default 65536)'),
  }),
  output: z.object({
    job: z.string(),
    stream: z.enum(['stdout', 'stderr']),
    offset: z.number(),
    content: z.string(),
    encoding: Encoding,
    total_bytes: z.number(),
    ended: z.boolean(),
    exit_status: z.number().nullable(),
  }),
  call: (input) => {
    const limit = input.limit ?? 64 * 1024;
    const request = encodeJobOutputRequest({ job: input.job, stream: input.stream ?? 'stdout', offset: input.offset ?? 0, limit });
    return inQubeExact(input.qube, 'job.output', '', request, { maxOutput: limit + HEADER_ROOM });
  },
  result: (call, reply) => {
    const r = inQubeResult(reply, decodeJobOutputReply);
    const request = decodeJobRequest(call.payload);
    const c = encodeBytes(r.content);
    return { job: jobOf(call.payload), stream: request?.get('stream'), offset: Number(request?.get('offset')), content: c.text, encoding: c.encoding, total_bytes: r.size, ended: r.ended, exit_status: r.exitStatus };
  },
});

export const jobWait = callTool({
  name: 'job_wait',
  title: 'Wait for a background job',
  operation: 'job.wait',
  description:
    "Wait until a background job ends, or for 'timeout_seconds' (default 60, 0 to look without waiting). Returns whether it ended, its exit status, and the bytes of stdout and stderr so far (read them with job_output). It sends progress notifications while it waits when the client asks for them." +
    NO_JOB +
    REFUSABLE,
  input: z.strictObject({ ...JobInput, timeout_seconds: z.number().int().min(0).max(MAX_WAIT_SECONDS).optional().describe('seconds to wait at most (default 60)') }),
  output: z.object({ job: z.string(), ended: z.boolean(), exit_status: z.number().nullable(), stdout_bytes: z.number(), stderr_bytes: z.number() }),
  long: true,
  call: (input) => {
    const timeout = input.timeout_seconds ?? 60;
    return inQubeExact(input.qube, 'job.wait', '', encodeJobWaitRequest({ job: input.job, timeoutSeconds: timeout }), {
      maxOutput: HEADER_ROOM,
      // the service answers at its timeout; leave it time to
      timeoutMs: (timeout + 30) * 1000,
    });
  },
  result: (call, reply) => {
    const r = inQubeResult(reply, decodeJobWaitReply);
    return { job: jobOf(call.payload), ended: r.ended, exit_status: r.exitStatus, stdout_bytes: r.stdoutSize, stderr_bytes: r.stderrSize };
  },
});

export const jobKill = callTool({
  name: 'job_kill',
  title: 'Signal a background job',
  operation: 'job.kill',
  description:
    "Send a signal (TERM by default; KILL, INT or HUP) to a background job: to its command and everything the command started in its process group. 'already_ended' is true when the job had ended and nothing was signalled. Use job_wait to see it end." +
    NO_JOB +
    REFUSABLE,
  input: z.strictObject({ ...JobInput, signal: z.enum(['TERM', 'KILL', 'INT', 'HUP']).optional().describe("'TERM' (the default), 'KILL', 'INT' or 'HUP'") }),
  output: z.object({ job: z.string(), already_ended: z.boolean() }),
  call: (input) => inQubeExact(input.qube, 'job.kill', '', encodeJobKillRequest({ job: input.job, signal: input.signal ?? 'TERM' }), { maxOutput: HEADER_ROOM }),
  result: (call, reply) => ({ job: jobOf(call.payload), already_ended: inQubeResult(reply, decodeJobKillReply).ended }),
});

/** The most jobs a listing returns, the latest; a qube keeps every job it started until it stops. */
const MAX_LISTED = 1000;

export const jobList = callTool({
  name: 'job_list',
  title: 'List the background jobs of a qube',
  operation: 'job.list',
  description:
    "List the background jobs a qube has run since it started, oldest first: each job's id, its command, when it started, whether it ended and its exit status." +
    REFUSABLE +
    UNTRUSTED,
  input: z.strictObject({ qube: QubeName }),
  output: z.object({
    qube: z.string(),
    jobs: z.array(z.object({ job: z.string(), command: z.string(), started: z.string(), ended: z.boolean(), exit_status: z.number().nullable() })),
  }),
  call: (input) => inQubeExact(input.qube, 'job.list', '', encodeJobListRequest(), { maxOutput: 4 * MIB }),
  result: (call, reply) => ({
    qube: call.target,
    jobs: inQubeResult(reply, decodeJobListReply)
      .slice(-MAX_LISTED)
      .map((j) => ({ job: j.job, command: j.command, started: isoTime(j.started), ended: j.ended, exit_status: j.exitStatus })),
  }),
});

/** The job id a request names. */
function jobOf(payload: Buffer): string {
  const job = decodeJobRequest(payload)?.get('job');
  if (job === undefined) throw new Failed();
  return job;
}

/** A time the qube reported, in seconds since the epoch, as ISO 8601. */
function isoTime(seconds: number): string {
  const date = new Date(seconds * 1000);
  if (Number.isNaN(date.getTime())) throw new Failed();
  return date.toISOString();
}
