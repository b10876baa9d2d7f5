import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SystemInfo } from '../../src/shared/policy/index.js';
import { loadPolicyFromRoot } from '../../src/shared/policy/index.js';
import { fleetState } from '../../src/sim/fleet.js';
import { seedDefaultPolicy } from '../../src/sim/qrexec/default-policy.js';
import { fleet } from './helpers.js';

function systemInfo(): SystemInfo {
  const domains: SystemInfo['domains'] = {
    dom0: { tags: [], type: 'AdminVM', template_for_dispvms: false, default_dispvm: 'dvm', power_state: 'Running', uuid: '00000000-0000-0000-0000-000000000000' },
  };
  for (const q of fleetState(fleet).vms) {
    if (q.name === 'dom0') continue;
    domains[q.name] = {
      tags: [],
      type: q.klass === 'TemplateVM' ? 'TemplateVM' : 'AppVM',
      template_for_dispvms: q.name === 'dvm',
      default_dispvm: 'dvm',
      power_state: 'Halted',
      uuid: `00000000-0000-0000-0000-${String(domains ? Object.keys(domains).length : 0).padStart(12, '0')}`,
    };
  }
  return { domains };
}

describe('default dom0 policy', () => {
  it('parses and gives the everyday answers', async () => {
    const root = await mkdtemp(join(tmpdir(), 'qmcp-default-policy-'));
    try {
      seedDefaultPolicy(root);
      const policy = loadPolicyFromRoot(root);
      const info = systemInfo();
      const action = (service: string, source: string, target: string): string =>
        policy.evaluate({ service, argument: '', source, target }, info).action;
      assert.equal(action('qubes.Filecopy', 'work', 'vault'), 'ask');
      assert.equal(action('qubes.OpenInVM', 'work', '@dispvm'), 'allow');
      assert.equal(action('qubes.OpenURL', 'work', 'vault'), 'ask');
      assert.equal(action('qubes.VMShell', 'work', 'vault'), 'deny');
      assert.equal(action('qubes.VMShell', 'dom0', 'vault'), 'allow');
      assert.equal(action('qubes.GetDate', 'work', '@default'), 'allow');
      assert.equal(action('qubes.UpdatesProxy', 'tpl', '@default'), 'allow');
      assert.equal(action('qubes.UpdatesProxy', 'work', '@default'), 'deny');
      assert.equal(action('admin.vm.List', 'work', '@adminvm'), 'deny');
      assert.equal(action('some.Other', 'work', 'vault'), 'deny');
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it('leaves an edited file as it is', async () => {
    const root = await mkdtemp(join(tmpdir(), 'qmcp-default-policy-'));
    try {
      seedDefaultPolicy(root);
      const path = join(root, 'etc', 'qubes', 'policy.d', '90-default.policy');
      await writeFile(path, '# mine\n');
      seedDefaultPolicy(root);
      assert.equal(await readFile(path, 'utf8'), '# mine\n');
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
