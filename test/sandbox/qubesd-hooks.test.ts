import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startSimHost } from '../../src/sim/host.js';
import type { SimApp } from '../../src/sim/qubesd/index.js';
import { QubeSandboxes, registryLookup } from '../../src/sim/sandbox/index.js';
import { sh, skipWithoutBwrap, withTempDir } from './helpers.js';

test('the simulated qubesd starts and stops sandboxes through its power hooks', { skip: skipWithoutBwrap }, async () => {
  await withTempDir(async (dir) => {
    // qubesd takes the hooks before it has the app the lookup reads.
    const ref: { app?: SimApp } = {};
    const sandboxes = new QubeSandboxes({ dir, lookup: registryLookup(() => ref.app) });
    const host = await startSimHost({
      dir,
      hooks: sandboxes,
      fleet: {
        qubes: [
          { name: 'tpl', klass: 'TemplateVM' },
          { name: 'box', klass: 'AppVM', template: 'tpl', properties: { netvm: null } },
        ],
      },
    });
    const app = host.qubesd.app;
    ref.app = app;
    try {
      await app.start(app.mustGet('box'));
      assert.equal(sandboxes.isRunning('box'), true);
      assert.equal((await sh(sandboxes, 'box', 'hostname; ls /etc/qubes-rpc')).stdout, 'box\nqmcp.CopyTo\nqmcp.Exec\nqmcp.ReadFile\nqmcp.WriteFile\nqubes.Filecopy\n');
      await app.kill(app.mustGet('box'));
      assert.equal(sandboxes.isRunning('box'), false);
    } finally {
      await sandboxes.stopAll();
      await host.close();
    }
  });
});
