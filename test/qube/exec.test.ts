import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeExecReply, encodeExecRequest, InQubeError } from '../../src/shared/inqube-protocol.js';
import type { ExecRequest, ExecResult } from '../../src/shared/inqube-protocol.js';
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isAlive, within } from '../principal/fake-qrexec.js';
import { qubeDir, runScript, shell, withTempDir } from './helpers.js';

async function exec(request: ExecRequest): Promise<ExecResult> {
  const run = await runScript('qmcp.Exec', [], encodeExecRequest(request));
  assert.equal(run.status, 0, run.stderr.toString());
  return decodeExecReply(run.stdout);
}

test('argv form passes arguments verbatim and separates the streams', async () => {
  const result = await exec({ argv: ['sh', '-c', 'printf "%s|" "$@"; echo oops >&2', 'x', 'a b', ' ', 'new\nline\n', '$HOME', '*'] });
  assert.equal(result.exitStatus, 0);
  assert.equal(result.timedOut, false);
  assert.equal(result.stdout.toString(), 'a b| |new\nline\n|$HOME|*|');
  assert.equal(result.stderr.toString(), 'oops\n');
});

test('shell form runs with sh -c and reports a non-zero exit', async () => {
  const result = await exec({ shell: 'echo out; echo err >&2; exit 7' });
  assert.equal(result.exitStatus, 7);
  assert.equal(result.stdout.toString(), 'out\n');
  assert.equal(result.stderr.toString(), 'err\n');
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
  assert.deepEqual(result.stdout, input);
  assert.equal(result.stdoutTruncated, false);
});

test('the header does not swallow stdin that looks like a header', async () => {
  const input = 'qmcp 1\nargv Zm9v\n\nrest';
  const result = await exec({ argv: ['cat'], stdin: input });
  assert.equal(result.stdout.toString(), input);
});

test('huge output is truncated per stream with a flag, and the command still completes', async () => {
  const result = await exec({
    shell: 'head -c 3000000 /dev/zero; head -c 10 /dev/zero | tr "\\0" e >&2; exit 3',
    outputLimit: 1000,
  });
  assert.equal(result.exitStatus, 3);
  assert.equal(result.stdout.length, 1000);
  assert.equal(result.stdoutTruncated, true);
  assert.equal(result.stderr.toString(), 'eeeeeeeeee');
  assert.equal(result.stderrTruncated, false);
});

test('output exactly at the limit is not truncated', async () => {
  const result = await exec({ shell: 'printf 12345', outputLimit: 5 });
  assert.equal(result.stdout.toString(), '12345');
  assert.equal(result.stdoutTruncated, false);
});

test('a timeout stops the command and is reported', async () => {
  const result = await exec({ shell: 'echo started; exec sleep 30', timeoutSeconds: 1 });
  assert.equal(result.timedOut, true);
  assert.equal(result.stdout.toString(), 'started\n');
});

test('a caller that goes away stops the command at once, not at its timeout', async () => {
  await withTempDir(async (dir) => {
    const pidFile = join(dir, 'pid');
    const service = spawn(shell, [join(qubeDir, 'qmcp.Exec')], { env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin' }, stdio: ['pipe', 'pipe', 'ignore'] });
    const exited = new Promise<number | null>((resolve) => service.on('close', (status) => resolve(status)));
    service.stdin.end(encodeExecRequest({ shell: `echo $$ >${pidFile}; exec sleep 3000`, timeoutSeconds: 3600 }));
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
