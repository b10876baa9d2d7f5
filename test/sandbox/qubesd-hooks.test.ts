import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startSimHost } from '../../src/sim/host.js';
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
