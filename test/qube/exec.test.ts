import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeExecReply, encodeExecRequest, InQubeError } from '../../src/shared/inqube-protocol.js';
import type { ExecRequest, ExecResult } from '../../src/shared/inqube-protocol.js';
import { spawn } from 'node:child_process';
import { mkdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { hangBoundMs } from '../../verify/hang-bound.js';
import { isAlive, within } from '../principal/fake-qrexec.js';
import { fakeBin, me, qubeDir, runScript, shell, weakenedScript, withTempDir } from './helpers.js';

/** Runs a request through SCRIPT (the service, or a weakened copy) with ENV; the user is the test's own unless the request names one. */
async function exec(request: ExecRequest, env: Record<string, string> = {}, script = 'qmcp.Exec'): Promise<ExecResult> {
  const run = await runScript(script, [], encodeExecRequest({ user: me, ...request }), env);
  assert.equal(run.status, 0, run.stderr.toString());
  const result = decodeExecReply(run.stdout);
  // a saved directory is the test's to remove
  if (result.saved !== null) await rm(result.saved, { recursive: true, force: true });
  return result;
}

const out = (r: ExecResult): string => Buffer.concat([r.stdout.head, r.stdout.tail]).toString();

test('argv form passes arguments verbatim and separates the streams', async () => {
  const result = await exec({ argv: ['sh', '-c', 'printf "%s|" "$@"; echo oops >&2', 'x', 'a b', ' ', 'new\nline\n', '$HOME', '*'] });
  assert.equal(result.exitStatus, 0);
  assert.equal(result.timedOut, false);
  assert.equal(out(result), 'a b| |new\nline\n|$HOME|*|');
  assert.equal(result.stderr.head.toString(), 'oops\n');
});

test('shell form runs with sh -c and reports a non-zero exit', async () => {
  const result = await exec({ shell: 'echo out; echo err >&2; exit 7' });
  assert.equal(result.exitStatus, 7);
  assert.equal(out(result), 'out\n');
  assert.equal(result.stderr.head.toString(), 'err\n');
});

test('a command that exits 124 by itself is not a timeout', async () => {
  // a limit no loaded machine reaches: only the command's own exit may end it
  const result = await exec({ shell: 'exit 124', timeoutSeconds: 3600 });
  assert.equal(result.exitStatus, 124);
  assert.equal(result.timedOut, false);
});

test('stdin and output are binary-safe, NUL bytes included', async () => {
  const bytes = Buffer.alloc(256);
  for (let i = 0; i < 256; i++) bytes[i] = i;
  const input = Buffer.concat([bytes, Buffer.from('\n\n'), bytes]);
  const result = await exec({ argv: ['cat'], stdin: input });
  assert.deepEqual(result.stdout.head, input);
  assert.deepEqual([result.stdout.tail.length, result.stdout.total, result.saved], [0, input.length, null]);
});

test('the header does not swallow stdin that looks like a header', async () => {
  const input = 'qmcp 1\nargv Zm9v\n\nrest';
  const result = await exec({ argv: ['cat'], stdin: input });
  assert.equal(out(result), input);
});

test('huge output keeps its head and tail, counts everything, is saved whole, and the command still completes', async () => {
  const run = await runScript('qmcp.Exec', [], encodeExecRequest({
    user: me,
    shell: 'i=0; while [ $i -lt 30000 ]; do echo "line $i"; i=$((i+1)); done; head -c 10 /dev/zero | tr "\\0" e >&2; exit 3',
    outputLimit: 1000,
  }));
  const result = decodeExecReply(run.stdout);
  try {
    assert.equal(result.exitStatus, 3);
    assert.equal(result.stdout.head.toString(), (await expectedLines(30000)).subarray(0, 500).toString());
    assert.equal(result.stdout.tail.toString(), (await expectedLines(30000)).subarray(-500).toString());
    assert.equal(result.stdout.total, (await expectedLines(30000)).length);
    assert.equal(result.stdout.lines, 30000);
    assert.equal(result.stderr.head.toString(), 'eeeeeeeeee');
    assert.deepEqual([result.stderr.total, result.stderr.lines, result.stderr.tail.length], [10, 1, 0]);
    assert.ok(result.saved !== null && result.saved.startsWith('/tmp/qmcp-output.'));
    assert.deepEqual(await readFile(join(result.saved, 'stdout')), await expectedLines(30000));
    assert.equal(await readFile(join(result.saved, 'stderr'), 'utf8'), 'eeeeeeeeee');
  } finally {
    if (result.saved !== null) await rm(result.saved, { recursive: true, force: true });
  }
});

async function expectedLines(n: number): Promise<Buffer> {
  return Buffer.from(Array.from({ length: n }, (_, i) => `line ${i}\n`).join(''));
}

test('shaping at the edges: at the limit, one over, empty, binary, no trailing newline', async () => {
  const at = await exec({ shell: 'printf 12345', outputLimit: 5 });
  assert.deepEqual([out(at), at.stdout.total, at.stdout.lines, at.saved], ['12345', 5, 1, null]);
  assert.equal(at.stdout.tail.length, 0);
  const over = await runScript('qmcp.Exec', [], encodeExecRequest({ user: me, shell: 'printf 123456', outputLimit: 5 }));
  const cut = decodeExecReply(over.stdout);
  try {
    assert.deepEqual([cut.stdout.head.toString(), cut.stdout.tail.toString(), cut.stdout.total], ['123', '56', 6]);
    assert.ok(cut.saved !== null);
    assert.equal(await readFile(join(cut.saved, 'stdout'), 'utf8'), '123456');
  } finally {
    if (cut.saved !== null) await rm(cut.saved, { recursive: true, force: true });
  }
  const empty = await exec({ argv: ['true'], outputLimit: 5 });
  assert.deepEqual([empty.stdout.head.length, empty.stdout.total, empty.stdout.lines, empty.stderr.total, empty.saved], [0, 0, 0, 0, null]);
  const lines = await exec({ shell: 'printf "a\\nb"; printf "x\\n\\n" >&2' });
  assert.deepEqual([lines.stdout.lines, lines.stderr.lines], [2, 2]);
  const bytes = Buffer.alloc(512);
  for (let i = 0; i < 512; i++) bytes[i] = i % 256;
  const binary = await runScript('qmcp.Exec', [], encodeExecRequest({ user: me, argv: ['cat'], stdin: bytes, outputLimit: 101 }));
  const b = decodeExecReply(binary.stdout);
  try {
    assert.deepEqual(b.stdout.head, bytes.subarray(0, 51));
    assert.deepEqual(b.stdout.tail, bytes.subarray(-50));
    assert.equal(b.stdout.total, 512);
  } finally {
    if (b.saved !== null) await rm(b.saved, { recursive: true, force: true });
  }
  const none = await exec({ shell: 'echo hidden', outputLimit: 0 });
  assert.deepEqual([none.stdout.head.length, none.stdout.tail.length, none.stdout.total], [0, 0, 7]);
});

test('a timeout stops the command and is reported', async () => {
  // the timeout must come after `started`: a loaded machine gets longer to print it
  const result = await exec({ shell: 'echo started; exec sleep 3000', timeoutSeconds: Math.ceil(hangBoundMs(1000) / 1000) });
  assert.equal(result.timedOut, true);
  assert.equal(out(result), 'started\n');
});

test('a caller that goes away stops the command at once, not at its timeout', async () => {
  await withTempDir(async (dir) => {
    const pidFile = join(dir, 'pid');
    const service = spawn(shell, [join(qubeDir, 'qmcp.Exec')], { env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin' }, stdio: ['pipe', 'pipe', 'ignore'] });
    const exited = new Promise<number | null>((resolve) => service.on('close', (status) => resolve(status)));
    service.stdin.end(encodeExecRequest({ user: me, shell: `echo $$ >${pidFile}; exec sleep 3000`, timeoutSeconds: 3600 }));
    let pid = 0;
    try {
      await within(60_000, async () => {
        pid = Number(await readFile(pidFile, 'utf8').catch(() => ''));
        return pid > 0 && isAlive(pid);
      }, 'the command');
      // what qrexec does when the caller disconnects: the service's stdout is shut
      service.stdout.destroy();
      await within(60_000, () => !isAlive(pid), 'the command to end');
      assert.equal(await exited, 0);
    } finally {
      if (pid > 0 && isAlive(pid)) process.kill(pid, 'SIGKILL');
      service.kill('SIGKILL');
    }
  });
});

test('a missing command reports 127 from the shell', async () => {
  const result = await exec({ argv: ['qmcp-no-such-command'] });
  assert.equal(result.exitStatus, 127);
});

test('malformed requests are answered with an error header', async () => {
  for (const input of ['', 'http 1\n\n', 'qmcp 2\n\n', 'qmcp 1\nargv !!!\n\n', 'qmcp 1\ntimeout -1\nargv eA==\n\n', 'qmcp 1\n\n']) {
    const run = await runScript('qmcp.Exec', [], Buffer.from(input));
    assert.equal(run.status, 0);
    assert.throws(() => decodeExecReply(run.stdout), InQubeError, JSON.stringify(input));
  }
});

test('the encoder refuses NUL bytes in arguments and ambiguous forms', () => {
  assert.throws(() => encodeExecRequest({ argv: ['a\0b'] }), TypeError);
  assert.throws(() => encodeExecRequest({ argv: ['a'], shell: 'b' }), TypeError);
  assert.throws(() => encodeExecRequest({}), TypeError);
});

test('the default user is the one QubesDB names, in its home, as qvm-run', async () => {
  await withTempDir(async (dir) => {
    const bin = await fakeBin(dir, { 'qubesdb-read': `[ "$1" = /default-user ] && echo ${me}` });
    const path = `${bin}:${process.env['PATH'] ?? '/usr/bin:/bin'}`;
    const run = await runScript('qmcp.Exec', [], encodeExecRequest({ shell: 'id -un; pwd' }), { PATH: path });
    const r = decodeExecReply(run.stdout);
    const home = (await import('node:os')).userInfo().homedir;
    assert.equal(out(r), `${me}\n${(await stat(home).then(() => home, () => '/'))}\n`);
  });
});

test('without QubesDB the default user is `user`, and a missing user is an error of its own', async () => {
  const hasUser = (await runScript('qmcp.Exec', [], encodeExecRequest({ user: me, argv: ['getent', 'passwd', 'user'] }))).stdout;
  const run = await runScript('qmcp.Exec', [], encodeExecRequest({ argv: ['true'] }));
  if (decodeExecReply(hasUser).exitStatus === 0) decodeExecReply(run.stdout);
  else assert.throws(() => decodeExecReply(run.stdout), (e: unknown) => e instanceof InQubeError && e.kind === 'no_user');
  const missing = await runScript('qmcp.Exec', [], encodeExecRequest({ user: 'qmcp-no-such-user', argv: ['true'] }));
  assert.throws(() => decodeExecReply(missing.stdout), (e: unknown) => e instanceof InQubeError && e.kind === 'no_user');
});

test('another user is reached through runuser, with the environment and directory given', async () => {
  await withTempDir(async (dir) => {
    // the fake runuser records its options and runs the rest as the test's own user
    const bin = await fakeBin(dir, { runuser: `printf '%s ' "$@" >${dir}/runuser.args; shift 3; exec "$@"` });
    const path = `${bin}:${process.env['PATH'] ?? '/usr/bin:/bin'}`;
    await mkdir(join(dir, 'work dir'));
    const r = await exec({ user: 'nobody', cwd: join(dir, 'work dir'), env: ['GREETING=a b\nc', 'EMPTY=', 'X=1=2'], shell: 'pwd; printf "%s|" "$GREETING" "$EMPTY" "$X"' }, { PATH: path });
    assert.equal(out(r), `${join(dir, 'work dir')}\na b\nc||1=2|`);
    assert.match(await readFile(join(dir, 'runuser.args'), 'utf8'), /^-u nobody -- env -- /);
  });
});

test('an argv[0] with `=` is a command, never an assignment', async () => {
  const r = await exec({ argv: ['A=1'], env: ['B=2'] });
  assert.equal(r.exitStatus, 127);
});

test('a working directory that is not there is an error; the command does not run', async () => {
  await withTempDir(async (dir) => {
    const run = await runScript('qmcp.Exec', [], encodeExecRequest({ user: me, cwd: join(dir, 'none'), shell: `touch ${dir}/ran` }));
    assert.throws(() => decodeExecReply(run.stdout), (e: unknown) => e instanceof InQubeError && e.kind === 'not_found');
    await assert.rejects(stat(join(dir, 'ran')));
  });
});

const b64 = (s: string | Buffer): string => Buffer.from(s).toString('base64');

/** Requests the encoder would never write, one per malformed class of user, cwd and env. */
const MALFORMED: Readonly<Record<string, readonly string[]>> = {
  user: ['user Root', 'user -user', 'user us/er', `user ${'a'.repeat(33)}`, 'user 1user', 'user '],
  cwd: [`cwd ${b64('relative')}`, `cwd ${b64('')}`, `cwd ${b64('/a\0b')}`, `cwd ${b64('/' + 'a'.repeat(4096))}`],
  env: [
    `env ${b64('NOEQUALS')}`,
    `env ${b64('=value')}`,
    `env ${b64('1A=x')}`,
    `env ${b64('A-B=x')}`,
    `env ${b64('A B=x')}`,
    `env ${b64('A=x\0y')}`,
    `env ${b64(`A=${'x'.repeat(32768)}`)}`,
    Array.from({ length: 65 }, (_, i) => `env ${b64(`V${i}=x`)}`).join('\n'),
  ],
};

/** Every malformed request of CLASS is refused by SCRIPT with bad_request, and nothing runs. */
async function refusesMalformed(script: string, klass: string): Promise<void> {
  await withTempDir(async (dir) => {
    for (const line of MALFORMED[klass] ?? []) {
      const request = `qmcp 1\nshell ${b64(`touch ${dir}/ran`)}\ntimeout 0\nuser ${me}\n${line}\n\n`;
      const run = await runScript(script, [], Buffer.from(request));
      assert.throws(() => decodeExecReply(run.stdout), (e: unknown) => e instanceof InQubeError && e.kind === 'bad_request', `${klass}: ${line.slice(0, 60)}`);
      await assert.rejects(stat(join(dir, 'ran')), `${klass}: ${line.slice(0, 60)} ran`);
    }
  });
}

for (const klass of Object.keys(MALFORMED)) {
  test(`the service refuses malformed ${klass} itself`, () => refusesMalformed('qmcp.Exec', klass));
}

test('a service without its own checks of user, cwd and env is caught', async () => {
  await withTempDir(async (dir) => {
    const weak = {
      user: await weakenedScript(dir, 'qmcp.Exec', "is_user \"$value\" || reply_error bad_request 'bad user'; ", ''),
      cwd: await weakenedScript(dir, 'qmcp.Exec', "case $decoded in /*) ;; *) reply_error bad_request 'cwd is not absolute' ;; esac", ':'),
      env: await weakenedScript(dir, 'qmcp.Exec', "{ is_env \"$decoded\" && ! has_nul \"$value\"; } || reply_error bad_request 'bad env'", ':'),
    };
    for (const [klass, script] of Object.entries(weak)) await assert.rejects(refusesMalformed(script, klass), klass);
  });
});
