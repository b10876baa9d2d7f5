import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pathToFileURL } from 'node:url';
import { startSimHost } from '../../src/sim/host.js';
import { qubesdCall } from '../../src/shared/adminapi/client.js';
import { weakenedFile } from '../../verify/weakened-module.js';
import { sh, skipWithoutBwrap, withTempDir } from './helpers.js';

test('the simulated host starts and stops sandboxes through qubesd power hooks', { skip: skipWithoutBwrap }, async () => {
  await withTempDir(async (dir) => {
    const host = await startSimHost({
      dir,
      fleet: {
        qubes: [
          { name: 'tpl', klass: 'TemplateVM' },
          { name: 'box', klass: 'AppVM', template: 'tpl', properties: { netvm: null } },
        ],
      },
    });
    const { app } = host.qubesd;
    const { sandboxes } = host;
    try {
      await app.start(app.mustGet('box'));
      assert.equal(sandboxes.isRunning('box'), true);
      const jobs = ['qmcp.JobKill', 'qmcp.JobList', 'qmcp.JobOutput', 'qmcp.JobStart', 'qmcp.JobWait'];
      assert.equal((await sh(sandboxes, 'box', 'hostname; ls /etc/qubes-rpc')).stdout, ['box', 'qmcp.CopyTo', 'qmcp.Exec', ...jobs, 'qmcp.ListDir', 'qmcp.PortForward', 'qmcp.ReadFile', 'qmcp.SinkPush', 'qmcp.Stat', 'qmcp.WriteFile', 'qubes.ConnectTCP', 'qubes.Filecopy', ''].join('\n'));
      await app.kill(app.mustGet('box'));
      assert.equal(sandboxes.isRunning('box'), false);
    } finally {
      await host.close();
    }
  });
});

test('a clean stop of the simulated host keeps what running qubes wrote', { skip: skipWithoutBwrap }, async () => {
  await withTempDir(async (dir) => {
    const fleet = {
      qubes: [
        { name: 'tpl', klass: 'TemplateVM' as const },
        { name: 'box', klass: 'AppVM' as const, template: 'tpl', properties: { netvm: null } },
      ],
    };
    const first = await startSimHost({ dir, fleet });
    try {
      await first.qubesd.app.start(first.qubesd.app.mustGet('box'));
      await first.qubesd.app.start(first.qubesd.app.mustGet('tpl'));
      assert.equal((await sh(first.sandboxes, 'box', 'echo kept > /home/user/note && echo ok')).stdout, 'ok\n');
      assert.equal((await sh(first.sandboxes, 'tpl', 'echo v=2 > /etc/kept.conf && echo ok')).stdout, 'ok\n');
    } finally {
      await first.close();
    }
    const second = await startSimHost({ dir });
    try {
      const { app } = second.qubesd;
      await app.start(app.mustGet('tpl'));
      await app.start(app.mustGet('box'));
      assert.equal((await sh(second.sandboxes, 'box', 'cat /home/user/note /etc/kept.conf')).stdout, 'kept\nv=2\n');
    } finally {
      await second.close();
    }
  });
});

/** What a qrexec call from a qube made and started just now returns, with the router's poll a day away. */
async function callFromFresh(start: typeof startSimHost): Promise<string> {
  let out = '';
  await withTempDir(async (dir) => {
    const fleet = { qubes: [{ name: 'tpl', klass: 'TemplateVM' as const }] };
    const host = await start({ dir, fleet, qrexecPollMs: 24 * 3600 * 1000 });
    try {
      const made = await qubesdCall(host.qubesd.socketPath, { method: 'admin.vm.Create.AppVM', arg: 'tpl', dest: 'dom0', payload: 'name=fresh label=red' });
      assert.ok(made.ok);
      await host.qubesd.app.start(host.qubesd.app.mustGet('fresh'));
      // no policy allows it: qrexec refuses (126); without a socket the call cannot reach qrexec (125)
      out = (await sh(host.sandboxes, 'fresh', 'qrexec-client-vm dom0 test.Nothing </dev/null 2>/dev/null; echo "status=$?"')).stdout;
    } finally {
      await host.close();
    }
  });
  return out;
}

test('a qube made since the router last looked reaches qrexec from its first command', { skip: skipWithoutBwrap }, async () => {
  assert.equal(await callFromFresh(startSimHost), 'status=126\n');
  const path = weakenedFile('sim/host', 'qrexecReady: async (name) => registry.router?.ensureSocket(name),', '');
  const { startSimHost: weak } = (await import(pathToFileURL(path).href)) as { startSimHost: typeof startSimHost };
  assert.equal(await callFromFresh(weak), 'status=125\n', 'the host did not ask for the socket');
});
