import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { existsSync } from 'node:fs';
import type { QrexecHost } from './helpers.js';
import { REFUSED, startQrexecHost, writeService } from './helpers.js';

const ECHO = '#!/bin/sh\necho "from $QREXEC_REMOTE_DOMAIN"\ncat\nexit 7\n';
const ENV = '#!/bin/sh\nenv | grep "^QREXEC" | sort\necho "argc=$#"\nfor a in "$@"; do echo "argv=$a"; done\n';

describe('qrexec router: policy and dom0 services', () => {
  let host: QrexecHost;
  before(async () => {
    host = await startQrexecHost();
    writeService(host.dom0, 'test.Echo', ECHO);
    writeService(host.dom0, 'test.Env', ENV);
    writeService(host.dom0, 'test.Stderr', '#!/bin/sh\necho oops >&2\necho fine\n');
    host.policy(
      [
        'test.Echo  *  work    @adminvm  allow',
        'test.Echo  *  agent   @adminvm  deny',
        'test.Echo  *  @anyvm  @anyvm    allow',
        'test.Env   *  work    @adminvm  allow',
        'test.Env   *  work    @default  allow target=dom0',
        'test.Env   *  work    vault     allow target=dom0',
        'test.Stderr * work    dom0      allow',
        'test.Missing * work   dom0      allow',
        'test.Halted * work    vault     allow autostart=no',
      ].join('\n') + '\n',
    );
  });
  after(() => host.close());

  it('runs an allowed dom0 service with stdin, stdout and its exit status', async () => {
    const r = await host.call('work', '@adminvm', 'test.Echo', 'hello\n');
    assert.equal(r.status, 7);
    assert.equal(r.stdout.toString(), 'from work\nhello\n');
    assert.equal(r.stderr.length, 0);
  });

  it('takes the source from the socket the call arrived on', async () => {
    const r = await host.call('agent', '@adminvm', 'test.Echo', 'hello\n');
    assert.deepEqual(r, REFUSED);
  });

  it('accepts $ for @ in the target', async () => {
    const r = await host.call('work', '$adminvm', 'test.Echo', 'x');
    assert.equal(r.status, 7);
    assert.equal(r.stdout.toString(), 'from work\nx');
  });

  it('gives a dom0 service exactly the environment and argv qrexec gives', async () => {
    const r = await host.call('work', '@adminvm', 'test.Env+some.arg');
    assert.equal(r.status, 0);
    assert.equal(
      r.stdout.toString(),
      [
        'QREXEC_REMOTE_DOMAIN=work',
        'QREXEC_REQUESTED_TARGET_KEYWORD=adminvm',
        'QREXEC_REQUESTED_TARGET_TYPE=keyword',
        'QREXEC_SERVICE_ARGUMENT=some.arg',
        'QREXEC_SERVICE_FULL_NAME=test.Env+some.arg',
        'argc=1',
        'argv=some.arg',
        '',
      ].join('\n'),
    );
  });

  it('passes no argv and an empty argument when the call has none', async () => {
    const r = await host.call('work', 'vault', 'test.Env');
    assert.equal(r.status, 0);
    assert.equal(
      r.stdout.toString(),
      [
        'QREXEC_REMOTE_DOMAIN=work',
        'QREXEC_REQUESTED_TARGET=vault',
        'QREXEC_REQUESTED_TARGET_TYPE=name',
        'QREXEC_SERVICE_ARGUMENT=',
        'QREXEC_SERVICE_FULL_NAME=test.Env+',
        'argc=0',
        '',
      ].join('\n'),
    );
  });

  it('names a nonexistent requested target as @default', async () => {
    const r = await host.call('work', 'no-such-qube', 'test.Env');
    assert.equal(r.status, 0);
    assert.match(r.stdout.toString(), /^QREXEC_REQUESTED_TARGET_KEYWORD=default$/m);
  });

  it('strips QREXEC variables inherited by the router', async () => {
    process.env.QREXEC_LEAK = 'x';
    process.env.QREXEC_SERVICE_PATH = '/kept';
    try {
      const r = await host.call('work', '@adminvm', 'test.Env');
      assert.doesNotMatch(r.stdout.toString(), /QREXEC_LEAK/);
      assert.match(r.stdout.toString(), /^QREXEC_SERVICE_PATH=\/kept$/m);
    } finally {
      delete process.env.QREXEC_LEAK;
      delete process.env.QREXEC_SERVICE_PATH;
    }
  });

  it('finds SERVICE+ARG before SERVICE across every directory, /run first', async () => {
    writeService(host.dom0, 'test.Look', '#!/bin/sh\necho etc-plain\n');
    writeService(host.dom0, 'test.Look+a', '#!/bin/sh\necho etc-arg\n');
    writeService(host.dom0, 'test.Look', '#!/bin/sh\necho run-plain\n', 'run/qubes-rpc');
    host.policy('test.Look * work @adminvm allow\n', '20-look.policy');
    assert.equal((await host.call('work', '@adminvm', 'test.Look+a')).stdout.toString(), 'etc-arg\n');
    assert.equal((await host.call('work', '@adminvm', 'test.Look+b')).stdout.toString(), 'run-plain\n');
  });

  it("passes a dom0 service's stderr to the caller", async () => {
    const r = await host.call('work', 'dom0', 'test.Stderr');
    assert.equal(r.status, 0);
    assert.equal(r.stdout.toString(), 'fine\n');
    assert.equal(r.stderr.toString(), 'oops\n');
  });

  it('returns 127 for an allowed service that does not exist', async () => {
    const r = await host.call('work', 'dom0', 'test.Missing');
    assert.equal(r.status, 127);
    assert.equal(r.stdout.length, 0);
  });

  it('refuses with identical bytes whatever the reason', async () => {
    const cases: [string, string, string][] = [
      ['work', 'no-such-qube', 'test.Echo'], // nonexistent target, no rule for @default
      ['agent', '@adminvm', 'test.Echo'], // an explicit deny
      ['work', 'work', 'test.Echo'], // loopback
      ['work', 'vault', 'test.Halted'], // halted with autostart=no
      ['work', '@adminvm', 'test.Unknown'], // no matching rule
    ];
    for (const [src, target, service] of cases) {
      assert.deepEqual(await host.call(src, target, service, 'in'), REFUSED, `${src} -> ${target} ${service}`);
    }
  });

  it('refuses every call while a policy file is invalid, and recovers when it is fixed', async () => {
    host.policy('this is not a rule\n', '10-broken.policy');
    assert.deepEqual(await host.call('work', '@adminvm', 'test.Echo', 'x'), REFUSED);
    host.policy('\n', '10-broken.policy');
    assert.equal((await host.call('work', '@adminvm', 'test.Echo', 'x')).status, 7);
  });

  it('serves concurrent calls independently', async () => {
    const inputs = Array.from({ length: 12 }, (_, i) => `call ${i}\n`.repeat(200));
    const results = await Promise.all(inputs.map((s) => host.call('work', '@adminvm', 'test.Echo', s)));
    results.forEach((r, i) => {
      assert.equal(r.status, 7);
      assert.equal(r.stdout.toString(), `from work\n${inputs[i]}`);
    });
  });

  it('has a socket for every qube and none for dom0', () => {
    for (const q of ['work', 'agent', 'vault', 'sys-net', 'tpl', 'dvm']) assert.ok(existsSync(host.router.socketFor(q)), q);
    assert.ok(!existsSync(host.router.socketFor('dom0')));
  });
});
