import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import type { QrexecHost } from './helpers.js';
import { startQrexecHost, writeService } from './helpers.js';

const repo = join(import.meta.dirname, '..', '..', '..');

function run(cmd: string[], input: string | null, env: NodeJS.ProcessEnv = process.env): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, cmd, { env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    // null: keep stdin open, as a caller that has more to say would
    if (input === null) child.stdin.write('open');
    else child.stdin.end(input);
  });
}

describe('qrexec callers: qmcp sim qrexec and qrexec-client-vm', () => {
  let host: QrexecHost;
  before(async () => {
    host = await startQrexecHost();
    writeService(host.dom0, 'test.Echo', '#!/bin/sh\necho "$QREXEC_REMOTE_DOMAIN $1"\ncat\nexit 4\n');
    host.policy('test.Echo * work @adminvm allow\n');
  });
  after(() => host.close());

  it('qmcp sim qrexec calls as the qube named by --as', async () => {
    const r = await run([join(import.meta.dirname, 'run-command.js'), 'qrexec', '--dir', host.dir, '--as', 'work', '@adminvm', 'test.Echo+a'], 'in');
    assert.deepEqual(r, { code: 4, stdout: 'work a\nin', stderr: '' });
  });

  it('qmcp sim qrexec shows a refusal as qrexec-client-vm does', async () => {
    const r = await run([join(import.meta.dirname, 'run-command.js'), 'qrexec', '--dir', host.dir, '--as', 'vault', '@adminvm', 'test.Echo'], 'in');
    assert.deepEqual(r, { code: 126, stdout: '', stderr: 'Request refused\n' });
  });

  it('qrexec-client-vm finds its socket in QMCP_QREXEC_SOCKET', async () => {
    const env = { ...process.env, QMCP_QREXEC_SOCKET: host.router.socketFor('work') };
    const ok = await run([join(repo, 'bin', 'qrexec-client-vm'), '@adminvm', 'test.Echo+b'], 'x', env);
    assert.deepEqual(ok, { code: 4, stdout: 'work b\nx', stderr: '' });
    const refused = await run([join(repo, 'bin', 'qrexec-client-vm'), 'dom0', 'test.Nope'], '', env);
    assert.deepEqual(refused, { code: 126, stdout: '', stderr: 'Request refused\n' });
  });

  it('both exit when the service is done even if their stdin stays open', async () => {
    host.policy('test.Short * work @adminvm allow\n', '20-short.policy');
    writeService(host.dom0, 'test.Short', '#!/bin/sh\necho done\n');
    const env = { ...process.env, QMCP_QREXEC_SOCKET: host.router.socketFor('work') };
    assert.deepEqual(await run([join(repo, 'bin', 'qrexec-client-vm'), '@adminvm', 'test.Short'], null, env), { code: 0, stdout: 'done\n', stderr: '' });
    const viaCli = await run([join(import.meta.dirname, 'run-command.js'), 'qrexec', '--dir', host.dir, '--as', 'work', '@adminvm', 'test.Short'], null);
    assert.deepEqual(viaCli, { code: 0, stdout: 'done\n', stderr: '' });
  });

  it('qrexec-client-vm needs a target and a service', async () => {
    const r = await run([join(repo, 'bin', 'qrexec-client-vm'), 'dom0'], '');
    assert.equal(r.code, 2);
  });
});
