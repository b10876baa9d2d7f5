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
      assert.equal((await sh(sandboxes, 'box', 'hostname; ls /etc/qubes-rpc')).stdout, 'box\nqmcp.CopyTo\nqmcp.Exec\nqmcp.ReadFile\nqmcp.SinkPush\nqmcp.WriteFile\nqubes.Filecopy\n');
      await app.kill(app.mustGet('box'));
      assert.equal(sandboxes.isRunning('box'), false);
    } finally {
      await host.close();
    }
  });
});
