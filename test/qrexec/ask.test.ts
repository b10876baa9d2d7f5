import assert from 'node:assert/strict';
import { after, before, describe, it, test } from 'node:test';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { askControl } from '../../src/sim/qrexec/asks.js';
import { DEFAULT_ASK_TIMEOUT_MS } from '../../src/sim/qrexec/router.js';
import { DEFAULT_TIMEOUT_MS as PRINCIPAL_CALL_TIMEOUT_MS } from '../../src/principal/qrexec.js';
import type { PendingAsk } from '../../src/sim/qrexec/asks.js';
import type { QrexecHost } from './helpers.js';
import { REFUSED, startQrexecHost, writeService } from './helpers.js';

function qmcp(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [join(import.meta.dirname, 'run-command.js'), ...args.slice(1)], (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** Waits until the router has queued `n` questions. */
async function pending(host: QrexecHost, n: number): Promise<PendingAsk[]> {
  for (;;) {
    const r = await askControl(host.router.askSocket, { op: 'list' });
    if (r.ok && (r.asks ?? []).length >= n) return r.asks ?? [];
    await sleep(10);
  }
}

describe('qrexec router: ask', () => {
  let host: QrexecHost;
  before(async () => {
    host = await startQrexecHost();
    writeService(host.dom0, 'test.Echo', '#!/bin/sh\necho "$QREXEC_REQUESTED_TARGET_TYPE"\ncat\n');
    host.policy('test.Echo * work @adminvm ask default_target=@adminvm\ntest.Ask * work @anyvm ask\n');
  });
  after(() => host.close());

  it('lists a waiting call and runs it once the operator allows it', async () => {
    const call = host.call('work', '@adminvm', 'test.Echo', 'payload');
    const [q] = await pending(host, 1);
    const list = await qmcp(['sim', 'ask', '--dir', host.dir, 'list']);
    assert.equal(list.code, 0);
    assert.match(list.stdout, new RegExp(`^${q?.id}\\twork -> @adminvm\\ttest\\.Echo\\t`, 'm'));
    const allow = await qmcp(['sim', 'ask', '--dir', host.dir, 'allow', q?.id ?? '']);
    assert.equal(allow.code, 0, allow.stderr);
    const r = await call;
    assert.equal(r.status, 0);
    assert.equal(r.stdout.toString(), 'keyword\npayload');
  });

  it('refuses a call the operator denies, with the usual bytes', async () => {
    const call = host.call('work', '@adminvm', 'test.Echo', 'payload');
    const [q] = await pending(host, 1);
    const deny = await qmcp(['sim', 'ask', '--dir', host.dir, 'deny', q?.id ?? '']);
    assert.equal(deny.code, 0, deny.stderr);
    assert.deepEqual(await call, REFUSED);
  });

  it('only allows a target the policy offered', async () => {
    const call = host.call('work', 'vault', 'test.Ask');
    const [q] = await pending(host, 1);
    const id = q?.id ?? '';
    const noDefault = await qmcp(['sim', 'ask', '--dir', host.dir, 'allow', id]);
    assert.equal(noDefault.code, 1);
    const outside = await qmcp(['sim', 'ask', '--dir', host.dir, 'allow', id, '--target', 'dom0']);
    assert.equal(outside.code, 1);
    assert.ok(q?.targets.includes('vault'));
    const ok = await qmcp(['sim', 'ask', '--dir', host.dir, 'allow', id, '--target', 'vault']);
    assert.equal(ok.code, 0, ok.stderr);
    // no in-qube service host here: the allowed call finds no service
    assert.equal((await call).status, 127);
  });

  it('rejects bad usage with status 2', async () => {
    assert.equal((await qmcp(['sim', 'ask', '--dir', host.dir, 'allow'])).code, 2);
    assert.equal((await qmcp(['sim', 'ask', 'list'])).code, 2);
  });
});

describe('qrexec router: ask timeout', () => {
  let host: QrexecHost;
  before(async () => {
    host = await startQrexecHost({ askTimeoutMs: 50 });
    host.policy('test.Echo * work @adminvm ask default_target=@adminvm\n');
  });
  after(() => host.close());

  it('refuses an unanswered call with the usual bytes', async () => {
    assert.deepEqual(await host.call('work', '@adminvm', 'test.Echo', 'x'), REFUSED);
  });
});

test("the simulator's ask lapses into the refusal before the principal's call timeout could end the call as a failure", () => {
  assert.ok(DEFAULT_ASK_TIMEOUT_MS >= 120_000, 'long, as Qubes\' dialog waits for the operator');
  assert.ok(DEFAULT_ASK_TIMEOUT_MS < PRINCIPAL_CALL_TIMEOUT_MS);
});
