/**
 * The background job services (src/qube/qmcp.Job, installed under each
 * job service's name), run on this machine as the qube would run them,
 * with their state in a directory of the test's own.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  decodeJobKillReply,
  decodeJobListReply,
  decodeJobOutputReply,
  decodeJobStartReply,
  decodeJobWaitReply,
  decodeReply,
  encodeExecRequest,
  encodeJobKillRequest,
  encodeJobListRequest,
  encodeJobOutputRequest,
  encodeJobWaitRequest,
  InQubeError,
  JOB_ID,
} from '../../src/shared/inqube-protocol.js';
import type { ExecRequest } from '../../src/shared/inqube-protocol.js';
import { hangBoundMs } from '../../verify/hang-bound.js';
import { fakeBin, me, qubeDir, shell, withTempDir } from './helpers.js';

const SERVICES = ['qmcp.JobStart', 'qmcp.JobOutput', 'qmcp.JobWait', 'qmcp.JobKill', 'qmcp.JobList'] as const;
type Service = (typeof SERVICES)[number];

/** One qube's job services: the script under each name, and its jobs directory. */
interface Qube {
  call(service: Service, request: Buffer, env?: Record<string, string>): Promise<Buffer>;
}

async function qubeAt(dir: string, script: string): Promise<Qube> {
  const bin = join(dir, 'bin');
  await mkdir(bin, { recursive: true });
  for (const s of SERVICES) await writeFile(join(bin, s), script, { mode: 0o755 });
  const jobs = join(dir, 'jobs');
  return {
    call: (service, request, env = {}) =>
      new Promise((resolve, reject) => {
        const child = spawn(shell, [join(bin, service)], { env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', QMCP_JOBS_DIR: jobs, ...env }, stdio: ['pipe', 'pipe', 'inherit'] });
        const out: Buffer[] = [];
        child.stdout.on('data', (c: Buffer) => out.push(c));
        child.on('error', reject);
        child.on('close', (status) => (status === 0 ? resolve(Buffer.concat(out)) : reject(new Error(`${service} exited ${String(status)}`))));
        child.stdin.on('error', () => undefined);
        child.stdin.end(request);
      }),
  };
}

const SOURCE = join(qubeDir, 'qmcp.Job');

async function withQube(fn: (q: Qube, dir: string) => Promise<void>, script?: string): Promise<void> {
  await withTempDir(async (dir) => fn(await qubeAt(dir, script ?? (await readFile(SOURCE, 'utf8'))), dir));
}

/** qmcp.Job with GUARD replaced by WEAKENED. */
async function weakened(guard: string, replacement: string): Promise<string> {
  const text = await readFile(SOURCE, 'utf8');
  assert.equal(text.split(guard).length, 2, `the guard ${guard} is in qmcp.Job once`);
  return text.replace(guard, replacement);
}

/** Starts a job, as the test's own user unless the request names one. */
async function start(q: Qube, request: ExecRequest, env: Record<string, string> = {}): Promise<string> {
  return decodeJobStartReply(await q.call('qmcp.JobStart', encodeExecRequest({ user: me, ...request }), env)).job;
}

async function wait(q: Qube, job: string, timeoutSeconds = 120): Promise<ReturnType<typeof decodeJobWaitReply>> {
  return decodeJobWaitReply(await q.call('qmcp.JobWait', encodeJobWaitRequest({ job, timeoutSeconds })));
}

test('a job runs after its start returned; its output is read by offset, with its total and exit status', async () => {
  await withQube(async (q) => {
    const job = await start(q, { shell: 'cat; printf hello; echo oops >&2; exit 3', stdin: 'in:' });
    assert.match(job, JOB_ID);
    const done = await wait(q, job);
    assert.deepEqual(done, { ended: true, exitStatus: 3, stdoutSize: 8, stderrSize: 5 });
    const read = async (stream: 'stdout' | 'stderr', offset: number, limit: number) =>
      decodeJobOutputReply(await q.call('qmcp.JobOutput', encodeJobOutputRequest({ job, stream, offset, limit })));
    assert.deepEqual(await read('stdout', 0, 5), { size: 8, ended: true, exitStatus: 3, content: Buffer.from('in:he') });
    assert.deepEqual((await read('stdout', 5, 100)).content, Buffer.from('llo'));
    assert.deepEqual((await read('stderr', 0, 100)).content, Buffer.from('oops\n'));
    // past the end: nothing, and the total
    for (const offset of [8, 9, 10 ** 12]) assert.deepEqual(await read('stdout', offset, 100), { size: 8, ended: true, exitStatus: 3, content: Buffer.alloc(0) });
  });
});

test('a running job is listed, waited for up to a timeout, and ended by job_kill; a second kill finds it ended', async () => {
  await withQube(async (q) => {
    const job = await start(q, { argv: ['sleep', '1000'] });
    assert.deepEqual(await wait(q, job, 0), { ended: false, exitStatus: null, stdoutSize: 0, stderrSize: 0 });
    const listed = decodeJobListReply(await q.call('qmcp.JobList', encodeJobListRequest()));
    assert.deepEqual(listed.map((j) => [j.job, j.ended, j.exitStatus, j.command]), [[job, false, null, 'sleep 1000']]);
    assert.deepEqual(decodeJobKillReply(await q.call('qmcp.JobKill', encodeJobKillRequest({ job, signal: 'TERM' }))), { ended: false });
    assert.deepEqual(await wait(q, job), { ended: true, exitStatus: 143, stdoutSize: 0, stderrSize: 0 });
    assert.deepEqual(decodeJobKillReply(await q.call('qmcp.JobKill', encodeJobKillRequest({ job, signal: 'KILL' }))), { ended: true });
  });
});

/** Ends what a test or a weakened service left of JOB, then lets its runner write its last files before the directory goes. */
async function stopJob(dir: string, job: string): Promise<void> {
  const pid = Number(await readFile(join(dir, 'jobs', job, 'pid'), 'utf8'));
  for (const target of [-pid, pid]) {
    try {
      process.kill(target, 'SIGKILL');
    } catch {
      // gone
    }
  }
  const deadline = Date.now() + hangBoundMs(30_000);
  while (!existsSync(join(dir, 'jobs', job, 'ended')) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
}

/**
 * Kills a job whose command left a child holding its output and writing a
 * line to a file every 50 ms: the job ends only if the child died too. A
 * signal to the process group is sent to every member before job_kill
 * replies, and a process told a fatal signal starts no further write, so at
 * most one line (a write under way) lands after the reply: two more mean
 * the child outlived the kill, with no window waited out.
 */
async function killReachesChildren(script?: string): Promise<void> {
  await withQube(async (q, dir) => {
    const ticks = join(dir, 'ticks');
    const lines = async (): Promise<number> => (existsSync(ticks) ? (await readFile(ticks, 'latin1')).split('\n').length - 1 : 0);
    const job = await start(q, { shell: `(while :; do echo tick >>'${ticks}'; sleep 0.05; done) & echo started; sleep 1000` });
    try {
      // the child is started once `started` is out
      const deadline = Date.now() + hangBoundMs(30_000);
      while (decodeJobOutputReply(await q.call('qmcp.JobOutput', encodeJobOutputRequest({ job, stream: 'stdout', offset: 0, limit: 100 }))).size === 0) {
        assert.ok(Date.now() < deadline, 'the job never wrote');
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      await q.call('qmcp.JobKill', encodeJobKillRequest({ job, signal: 'TERM' }));
      const atKill = await lines();
      // the child would hold stdout open: an end means it is gone
      const ending = Date.now() + hangBoundMs(30_000);
      while (!(await wait(q, job, 0)).ended) {
        assert.ok((await lines()) < atKill + 2, 'a child of the job wrote on after job_kill: the job must end, its children with it');
        assert.ok(Date.now() < ending, 'the job never ended');
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    } finally {
      await stopJob(dir, job);
    }
  }, script);
}

test("job_kill signals the job's process group: what the command started ends with it", async () => {
  await killReachesChildren();
});

test('a weakened qmcp.JobKill that signals only the command is caught', async () => {
  const script = await weakened('kill "-$signal" "-$pid" 2>/dev/null', 'kill "-$signal" "$pid" 2>/dev/null');
  await assert.rejects(killReachesChildren(script), /wrote on after job_kill/);
});

const realSetsid = execFileSync('sh', ['-c', 'command -v setsid'], { encoding: 'utf8' }).trim();

/**
 * A job whose runner has said it is ready and gone no further: its output
 * copies have not started. This setsid, put first on PATH, stands in for
 * the runner, writing its pid and readiness as the runner does, then
 * sleeping; every other setsid is the real one.
 */
async function withStalledRunner(fn: (q: Qube, job: string) => Promise<void>, script?: string): Promise<void> {
  await withQube(async (q, dir) => {
    const bin = await fakeBin(await mkdtemp(join(dir, 'fake-')), {
      setsid: `if [ "$4" = qmcp-job ]; then echo $$ >"$5/pid"; echo $$ >"$5/ready"; exec sleep 1000; fi\nexec '${realSetsid}' "$@"`,
    });
    const job = await start(q, { argv: ['true'] }, { PATH: `${bin}:${process.env['PATH'] ?? '/usr/bin:/bin'}` });
    try {
      await fn(q, job);
    } finally {
      process.kill(Number(await readFile(join(dir, 'jobs', job, 'pid'), 'utf8')), 'SIGKILL');
    }
  }, script);
}

test('a job is read, waited for and listed as soon as its start answered, before its output copies start', async () => {
  await withStalledRunner(async (q, job) => {
    assert.deepEqual(await wait(q, job, 0), { ended: false, exitStatus: null, stdoutSize: 0, stderrSize: 0 });
    const listed = decodeJobListReply(await q.call('qmcp.JobList', encodeJobListRequest()));
    assert.deepEqual(listed.map((j) => [j.job, j.ended, j.exitStatus, j.command]), [[job, false, null, 'true']]);
    for (const stream of ['stdout', 'stderr'] as const) {
      assert.deepEqual(decodeJobOutputReply(await q.call('qmcp.JobOutput', encodeJobOutputRequest({ job, stream, offset: 0, limit: 10 }))), {
        size: 0,
        ended: false,
        exitStatus: null,
        content: Buffer.alloc(0),
      });
    }
  });
});

test('weakened: output files made only by the runner are caught missing', async () => {
  const script = await weakened(`    : >"$dir/stdout" && : >"$dir/stderr" || reply_error internal 'cannot create the output files'\n`, '');
  await assert.rejects(withStalledRunner(async (q, job) => void (await wait(q, job, 0)), script), InQubeError);
});

const realEnv = execFileSync('sh', ['-c', 'command -v env'], { encoding: 'utf8' }).trim();

/**
 * Holds a job's command before it restores INT and QUIT: an env put first
 * on PATH waits there until the test lets it go. The runner opened its end
 * of the command's report before the command got this far, so a runner
 * that shows the job before the report has shown it by now.
 */
async function hiddenUntilRestored(script?: string): Promise<void> {
  await withQube(async (q, dir) => {
    const entered = join(dir, 'entered');
    const release = join(dir, 'release');
    const bin = await fakeBin(await mkdtemp(join(dir, 'fake-')), {
      env: `: >'${entered}'\nwhile [ ! -e '${release}' ]; do sleep 0.02; done\nexec '${realEnv}' "$@"`,
    });
    const starting = start(q, { argv: ['sleep', '1000'] }, { PATH: `${bin}:${process.env['PATH'] ?? '/usr/bin:/bin'}` });
    starting.catch(() => undefined);
    let job: string | undefined;
    try {
      const deadline = Date.now() + hangBoundMs(30_000);
      while (!existsSync(entered)) {
        assert.ok(Date.now() < deadline, 'the command never reached env');
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      assert.deepEqual(decodeJobListReply(await q.call('qmcp.JobList', encodeJobListRequest())), [], 'a job was shown before its command restored INT');
      await writeFile(release, '');
      job = await starting;
      assert.deepEqual(decodeJobKillReply(await q.call('qmcp.JobKill', encodeJobKillRequest({ job, signal: 'INT' }))), { ended: false });
      assert.deepEqual(await wait(q, job), { ended: true, exitStatus: 130, stdoutSize: 0, stderrSize: 0 });
    } finally {
      await writeFile(release, '');
      job ??= await starting.catch(() => undefined);
      if (job !== undefined) await stopJob(dir, job);
    }
  }, script);
}

/** Starts `sleep 1000` and sends it INT: it ends within ENDWITHIN seconds or the check fails. */
async function interruptJob(endWithin: number, script?: string): Promise<void> {
  await withQube(async (q, dir) => {
    const job = await start(q, { argv: ['sleep', '1000'] });
    try {
      assert.deepEqual(decodeJobKillReply(await q.call('qmcp.JobKill', encodeJobKillRequest({ job, signal: 'INT' }))), { ended: false });
      assert.deepEqual(await wait(q, job, endWithin), { ended: true, exitStatus: 130, stdoutSize: 0, stderrSize: 0 }, 'the job ignored SIGINT');
    } finally {
      await stopJob(dir, job);
    }
  }, script);
}

test('job_kill INT interrupts a job: its command does not inherit a background job\'s ignored SIGINT', async () => {
  await interruptJob(120);
});

test('weakened: a job started without its signals restored is caught ignoring INT', async () => {
  const script = await weakened('env --default-signal=INT,QUIT --', 'env --');
  await assert.rejects(interruptJob(1, script), /ignored SIGINT/);
});

test('a job is shown only once its command has restored INT and QUIT, so job_kill INT right after its start ends it', async () => {
  await hiddenUntilRestored();
});

test('weakened: a runner that shows the job before its command reports is caught', async () => {
  const report = '      read -r _ <"$dir/running"\n';
  const shown = '      echo "$command" >"$dir/pid"\n      echo "$command" >"$dir/ready"\n';
  const script = await weakened(report + shown, shown + report);
  await assert.rejects(hiddenUntilRestored(script), /shown before its command restored INT/);
});

/** What the files open in a job's command name, one a line. */
async function openedByCommand(script?: string): Promise<string> {
  let opened = '';
  await withQube(async (q) => {
    const job = await start(q, { shell: 'for f in /proc/$$/fd/*; do readlink "$f"; done' });
    assert.equal((await wait(q, job)).ended, true);
    opened = decodeJobOutputReply(await q.call('qmcp.JobOutput', encodeJobOutputRequest({ job, stream: 'stdout', offset: 0, limit: 65536 }))).content.toString('utf8');
  }, script);
  return opened;
}

test("a job's command holds no end of its runner's report", async () => {
  const opened = await openedByCommand();
  assert.match(opened, /out\.pipe$/m, 'the listing reads the command\'s own files');
  assert.doesNotMatch(opened, /running$/m);
  assert.match(await openedByCommand(await weakened('echo >&3; exec 3>&-;', 'echo >&3;')), /running$/m, 'a command left holding the report is seen');
});

/** The error kind a request gets. */
async function errorOf(q: Qube, service: Service, request: Buffer): Promise<string> {
  try {
    decodeReply(await q.call(service, request));
  } catch (e) {
    if (e instanceof InQubeError) return e.kind;
    throw e;
  }
  return 'ok';
}

/** A request naming JOB as it is, past the encoders' own check. */
function raw(service: Service, job: string): Buffer {
  const extra = service === 'qmcp.JobOutput' ? 'stream stdout\noffset 0\nlimit 10\n' : service === 'qmcp.JobWait' ? 'timeout 0\n' : 'signal TERM\n';
  return Buffer.from(`qmcp 1\njob ${job}\n${extra}\n`, 'latin1');
}

async function malformedIdsRefused(script?: string): Promise<void> {
  await withQube(async (q, dir) => {
    // a directory a traversal would reach, with what a job has
    await mkdir(join(dir, 'x'), { recursive: true });
    await writeFile(join(dir, 'x', 'pid'), '1\n');
    for (const service of ['qmcp.JobOutput', 'qmcp.JobWait', 'qmcp.JobKill'] as const) {
      for (const id of ['', 'ABCDEF012345', '0123456789abc', '0123456789a', '../x', '..', '0123456789a/', '*']) {
        assert.equal(await errorOf(q, service, raw(service, id)), 'bad_request', `${service} ${JSON.stringify(id)}`);
      }
      assert.equal(await errorOf(q, service, raw(service, '0123456789ab')), 'no_job', `${service}: an unknown id`);
    }
  }, script);
}

test('malformed job ids are refused as bad requests; an unknown one is no_job', async () => {
  await malformedIdsRefused();
});

test('a weakened qmcp.Job that takes any id as a path is caught', async () => {
  const script = await weakened("    '' | *[!0-9a-f]*) reply_error bad_request 'bad job id' ;;\n", '    "") ;;\n');
  await assert.rejects(malformedIdsRefused(script.replace(`[ "\${#1}" -eq 12 ] || reply_error bad_request 'bad job id'\n`, '')));
});

test("a job of another qube is unknown in this one; other malformed requests are refused", async () => {
  await withTempDir(async (dir) => {
    const script = await readFile(SOURCE, 'utf8');
    const a = await qubeAt(join(dir, 'a'), script);
    const b = await qubeAt(join(dir, 'b'), script);
    const job = await start(a, { shell: 'true' });
    assert.equal(await errorOf(b, 'qmcp.JobWait', encodeJobWaitRequest({ job, timeoutSeconds: 0 })), 'no_job');
    assert.equal((await wait(a, job)).ended, true);
    assert.equal(await errorOf(a, 'qmcp.JobOutput', Buffer.from(`qmcp 1\njob ${job}\nstream both\n\n`)), 'bad_request');
    assert.equal(await errorOf(a, 'qmcp.JobOutput', Buffer.from(`qmcp 1\njob ${job}\noffset -1\n\n`)), 'bad_request');
    assert.equal(await errorOf(a, 'qmcp.JobKill', Buffer.from(`qmcp 1\njob ${job}\nsignal STOP\n\n`)), 'bad_request');
    assert.equal(await errorOf(a, 'qmcp.JobWait', Buffer.from(`qmcp 1\njob ${job}\ntimeout 1e3\n\n`)), 'bad_request');
    assert.equal(await errorOf(a, 'qmcp.JobStart', Buffer.from('qmcp 1\ntimeout 0\n\n')), 'bad_request');
    assert.equal(await errorOf(a, 'qmcp.JobStart', Buffer.from('qmcp 2\n\n')), 'bad_version');
  });
});

test("a job runs as qmcp.Exec runs a command: the default user QubesDB names, or the user, directory and environment given", async () => {
  await withQube(async (q, dir) => {
    const out = async (job: string): Promise<string> => {
      assert.equal((await wait(q, job)).ended, true);
      return decodeJobOutputReply(await q.call('qmcp.JobOutput', encodeJobOutputRequest({ job, stream: 'stdout', offset: 0, limit: 4096 }))).content.toString('utf8');
    };
    // the fake runuser records its options and runs the rest as the test's own user
    await mkdir(join(dir, 'fake'));
    const bin = await fakeBin(join(dir, 'fake'), {
      'qubesdb-read': `[ "$1" = /default-user ] && echo ${me}`,
      runuser: `printf '%s ' "$@" >${dir}/runuser.args; shift 3; exec "$@"`,
    });
    const env = { PATH: `${bin}:${process.env['PATH'] ?? '/usr/bin:/bin'}` };
    const home = (await import('node:os')).userInfo().homedir;
    const byDefault = decodeJobStartReply(await q.call('qmcp.JobStart', encodeExecRequest({ shell: 'id -un; pwd' }), env)).job;
    assert.equal(await out(byDefault), `${me}\n${existsSync(home) ? home : '/'}\n`);
    await mkdir(join(dir, 'work dir'));
    const given = await start(q, { user: 'nobody', cwd: join(dir, 'work dir'), env: ['GREETING=a b', 'X=1=2'], shell: 'pwd; printf "%s|" "$GREETING" "$X"' }, env);
    assert.equal(await out(given), `${join(dir, 'work dir')}\na b|1=2|`);
    assert.match(await readFile(join(dir, 'runuser.args'), 'utf8'), /^-u nobody -- env --default-signal=INT,QUIT -- /);
    // the listing shows the command, not the user switch around it
    const listed = decodeJobListReply(await q.call('qmcp.JobList', encodeJobListRequest()));
    assert.deepEqual(listed.map((j) => j.command).sort(), ['id -un; pwd', 'pwd; printf "%s|" "$GREETING" "$X"']);
    for (const bad of [{ user: 'qmcp-no-such-user' }, { cwd: join(dir, 'none') }]) {
      const reply = await q.call('qmcp.JobStart', encodeExecRequest({ argv: ['true'], ...bad }), env);
      assert.throws(() => decodeJobStartReply(reply), (e: unknown) => e instanceof InQubeError && (e.kind === 'no_user' || e.kind === 'not_found'), JSON.stringify(bad));
    }
  });
});
