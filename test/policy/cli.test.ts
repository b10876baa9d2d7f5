// `qmcp policy eval` end to end, and the fleet conversion it relies on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fleetSystemInfo, fleetUuid } from '../../src/cli/fleet-system-info.js';
import { repo } from './corpus.js';

const qmcp = join(repo, 'bin', 'qmcp.js');

const FLEET = {
  properties: { default_dispvm: 'dvm' },
  qubes: [
    { name: 'work', klass: 'AppVM', template: 'fedora', tags: ['work'], power_state: 'Running' },
    { name: 'personal', klass: 'AppVM', template: 'fedora', properties: { default_dispvm: null } },
    { name: 'dvm', klass: 'AppVM', template: 'fedora', properties: { template_for_dispvms: true } },
    { name: 'fedora', klass: 'TemplateVM', uuid: '12345678-1234-4234-8234-123456789abc' },
    { name: 'dvm2', klass: 'AppVM', template: 'fedora', properties: { template_for_dispvms: true } },
    { name: 'disp1', klass: 'DispVM', template: 'dvm2' },
  ],
};

function withRoot(policies: Record<string, string>, fn: (root: string) => void): void {
  const root = realpathSync(mkdtempSync(join(tmpdir(), 'qmcp-policy-cli-')));
  try {
    for (const [rel, text] of Object.entries(policies)) {
      mkdirSync(join(root, rel, '..'), { recursive: true });
      writeFileSync(join(root, rel), text);
    }
    mkdirSync(join(root, 'etc/qubes/policy.d'), { recursive: true });
    writeFileSync(join(root, 'fleet.json'), JSON.stringify(FLEET));
    fn(root);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

function run(args: string[], input: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [qmcp, 'policy', 'eval', ...args], { input, encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const lines = (qs: object[]): string => qs.map((q) => JSON.stringify(q) + '\n').join('');

test('policy eval answers one JSON line per query', () => {
  withRoot({
    'etc/qubes/policy.d/30-test.policy': [
      'qubes.Filecopy * work @dispvm allow',
      'qubes.Filecopy * work personal ask default_target=personal user=user',
      'admin.vm.List + work @adminvm allow',
      'qubes.Filecopy * @anyvm @anyvm deny notify=no',
      '',
    ].join('\n'),
  }, (root) => {
    const dir = join(root, 'etc/qubes/policy.d');
    const r = run(['--policy-dir', dir, '--fleet', join(root, 'fleet.json')], lines([
      { source: 'work', target: '@dispvm', service: 'qubes.Filecopy', arg: '' },
      { source: 'work', target: 'personal', service: 'qubes.Filecopy', arg: 'x' },
      { source: 'work', target: 'dom0', service: 'admin.vm.List' },
      { source: 'work', target: 'dom0', service: 'admin.vm.List', arg: 'x' },
      { source: 'personal', target: 'work', service: 'qubes.Filecopy', arg: '' },
    ]));
    assert.equal(r.status, 0, r.stderr);
    const out = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(out.length, 5);
    assert.deepEqual(out[0], { action: 'allow', target: '@dispvm:dvm', user: null, autostart: true, notify: false, rule: `${dir}/30-test.policy:1` });
    assert.equal(out[1]?.['action'], 'ask');
    // The @dispvm rule above also offers the caller's disposable.
    assert.deepEqual(out[1]?.['targets'], ['@dispvm:dvm', 'personal']);
    assert.equal(out[1]?.['default_target'], 'personal');
    assert.equal(out[1]?.['user'], 'user');
    assert.deepEqual([out[2]?.['action'], out[2]?.['target']], ['allow', 'dom0']);
    assert.deepEqual([out[3]?.['action'], out[3]?.['target']], ['deny', null]);
    assert.deepEqual([out[4]?.['action'], out[4]?.['notify'], out[4]?.['rule']], ['deny', false, `${dir}/30-test.policy:4`]);
  });
});

test('policy eval --root merges run over etc', () => {
  withRoot({
    'etc/qubes/policy.d/50-a.policy': 'svc * @anyvm @anyvm allow target=personal\n',
    'run/qubes/policy.d/50-a.policy': 'svc * @anyvm @anyvm allow target=dvm\n',
  }, (root) => {
    const r = run(['--root', root, '--fleet', join(root, 'fleet.json')], lines([{ source: 'work', target: 'x', service: 'svc', arg: '' }]));
    assert.equal(r.status, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { target: string }).target, 'dvm');
  });
});

test('policy eval reports a policy error with file and line and exits 1', () => {
  withRoot({ 'etc/qubes/policy.d/50-a.policy': 'svc * @anyvm @anyvm allow\nsvc * @anyvm @anyvm allow bogus\n' }, (root) => {
    const dir = join(root, 'etc/qubes/policy.d');
    const r = run(['--policy-dir', dir, '--fleet', join(root, 'fleet.json')], lines([{ source: 'work', target: 'x', service: 'svc', arg: '' }]));
    assert.equal(r.status, 1);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, new RegExp(`^qmcp: policy error: ${dir}/50-a\\.policy:2: `));
  });
});

test('policy eval refuses bad usage with exit 2', () => {
  withRoot({}, (root) => {
    assert.equal(run(['--fleet', join(root, 'fleet.json')], '').status, 2);
    assert.equal(run(['--root', root], '').status, 2);
  });
});

test('policy eval rejects a line that is not a query', () => {
  withRoot({ 'etc/qubes/policy.d/50-a.policy': 'svc * @anyvm @anyvm allow\n' }, (root) => {
    const r = run(['--root', root, '--fleet', join(root, 'fleet.json')], 'nonsense\n');
    assert.equal(r.status, 1);
    assert.match(r.stderr, /line 1/);
  });
});

test('fleet to system info', () => {
  const info = fleetSystemInfo(FLEET).domains;
  assert.deepEqual(Object.keys(info).sort(), ['disp1', 'dom0', 'dvm', 'dvm2', 'fedora', 'personal', 'work']);
  assert.equal(info['dom0']?.uuid, '00000000-0000-0000-0000-000000000000');
  assert.equal(info['dom0']?.power_state, 'Running');
  // qubesd's defaults: dom0 follows the global default_dispvm, a disposable its own template
  assert.equal(info['dom0']?.default_dispvm, 'dvm');
  assert.equal(info['disp1']?.default_dispvm, 'dvm2');
  assert.equal(info['work']?.default_dispvm, 'dvm');
  assert.equal(info['personal']?.default_dispvm, null);
  assert.equal(info['dvm']?.template_for_dispvms, true);
  assert.equal(info['work']?.template_for_dispvms, false);
  assert.equal(info['fedora']?.type, 'TemplateVM');
  assert.equal(info['fedora']?.uuid, '12345678-1234-4234-8234-123456789abc');
  assert.equal(info['personal']?.power_state, 'Halted');
  assert.equal(info['work']?.power_state, 'Running');
  assert.deepEqual(info['work']?.tags, ['work']);
  assert.equal(info['work']?.uuid, fleetUuid('work'));
  assert.match(fleetUuid('work'), /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.notEqual(fleetUuid('work'), fleetUuid('personal'));
});
