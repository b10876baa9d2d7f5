import { test } from 'node:test';
import assert from 'node:assert/strict';
import { collect, hostProcessesWith, sh, skipWithoutBwrap, withSandboxes } from './helpers.js';

const skip = skipWithoutBwrap;

test('private storage persists across stop and start; an AppVM root change does not', { skip }, async () => {
  await withSandboxes(async (s) => {
    await s.beforeStart('app');
    const write = await sh(s, 'app', 'echo kept > /home/user/note && echo gone > /etc/note && mkdir -p /usr/local/bin && echo gone > /usr/local/bin/tool && echo ok');
    assert.equal(write.stdout, 'ok\n', write.stderr);
    assert.equal((await sh(s, 'app', 'cat /rw/home/user/note')).stdout, 'kept\n');
    await s.afterStop('app');
    await s.beforeStart('app');
    const read = await sh(s, 'app', 'cat /home/user/note; [ -e /etc/note ] || echo no-etc; [ -e /usr/local/bin/tool ] || echo no-tool');
    assert.equal(read.stdout, 'kept\nno-etc\nno-tool\n');
  });
});

test('a TemplateVM root change persists and reaches an AppVM at its next start', { skip }, async () => {
  await withSandboxes(async (s) => {
    await s.beforeStart('app');
    await s.beforeStart('tpl');
    const install = await sh(s, 'tpl', 'printf "#!/bin/sh\\necho from-template\\n" > /usr/local/bin/hello && chmod 755 /usr/local/bin/hello && echo v=1 > /etc/agent.conf');
    assert.equal(install.status, 0, install.stderr);
    // A running AppVM keeps the root it started with, as in Qubes.
    assert.equal((await sh(s, 'app', '[ -e /etc/agent.conf ] || echo absent')).stdout, 'absent\n');
    // Nor does one restarted while the template still runs: its changes
    // are committed when it shuts down.
    await s.afterStop('app2');
    await s.beforeStart('app2');
    assert.equal((await sh(s, 'app2', '[ -e /etc/agent.conf ] || echo absent')).stdout, 'absent\n');
    await s.afterStop('tpl');
    await s.beforeStart('tpl');
    assert.equal((await sh(s, 'tpl', 'cat /etc/agent.conf')).stdout, 'v=1\n');
    await s.afterStop('app');
    await s.beforeStart('app');
    assert.equal((await sh(s, 'app', 'hello; cat /etc/agent.conf')).stdout, 'from-template\nv=1\n');
    // A StandaloneVM has its own root, untouched by the template.
    await s.beforeStart('standalone');
    assert.equal((await sh(s, 'standalone', 'command -v hello || echo none')).stdout, 'none\n');
  });
});

test('a disposable starts from its disposable template and loses everything at stop', { skip }, async () => {
  await withSandboxes(async (s) => {
    await s.beforeStart('dvm-tpl');
    await sh(s, 'dvm-tpl', 'echo preset > /home/user/preset');
    await s.afterStop('dvm-tpl');
    await s.beforeStart('disp1');
    const first = await sh(s, 'disp1', 'cat /home/user/preset; echo scratch > /home/user/scratch');
    assert.equal(first.stdout, 'preset\n');
    await s.afterStop('disp1');
    await s.beforeStart('disp1');
    assert.equal((await sh(s, 'disp1', '[ -e /home/user/scratch ] || echo clean')).stdout, 'clean\n');
  });
});

test('stop kills every process of the qube, background ones included', { skip }, async () => {
  await withSandboxes(async (s) => {
    await s.beforeStart('app');
    const token = `qmcp-sleeper-${process.pid}`;
    const child = s.spawn('app', [
      '/bin/sh',
      '-c',
      `(/bin/sh -c 'sleep 1000; :' ${token} &); /bin/sh -c 'sleep 1000; :' ${token} & echo started; wait`,
    ]);
    const done = collect(child);
    await new Promise<void>((resolve) => child.stdout?.once('data', () => resolve()));
    assert.ok(hostProcessesWith(token) >= 2);
    await s.afterStop('app');
    const result = await done;
    assert.notEqual(result.status, 0);
    assert.equal(hostProcessesWith(token), 0);
  });
});
