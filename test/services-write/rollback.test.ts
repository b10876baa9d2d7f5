import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { auditLogPath } from '../../src/dom0/audit/index.js';
import { Qubesd, QubesdError } from '../../src/dom0/qubesd.js';
import { REFUSED, auditValid, call, names, startHost } from './helpers.js';

const STEPS = ['created', 'hidden', 'stripped', 'configured', 'tagged', 'verified', 'umbrella'];
const DISPOSABLE_STEPS = ['source-marked', ...STEPS.slice(0, 2), 'source-unmarked', ...STEPS.slice(2)];
const PATHS: [string, unknown, string[]][] = [
  ['qmcp.Create+', { name: 'ai-f', template: 'ai-tpl' }, STEPS],
  ['qmcp.Clone+ai-box', { name: 'ai-f' }, STEPS],
  ['qmcp.CreateDisposable+ai-dvm', { name: 'ai-f' }, DISPOSABLE_STEPS],
];

test('rollback: a fault at any step of any create path leaves nothing behind', async () => {
  const h = await startHost();
  try {
    const before = names(h);
    const dvmt = JSON.stringify(h.vm('ai-dvm'));
    for (const [full, payload, steps] of PATHS) {
      for (const step of steps) {
        const r = await call(h, full, payload, {
          fault: (s) => {
            if (s === step) throw new Error(`injected at ${s}`);
          },
        });
        assert.deepEqual(r, REFUSED, `${full} at ${step}`);
        assert.deepEqual(names(h), before, `${full} at ${step}`);
        assert.equal(JSON.stringify(h.vm('ai-dvm')), dvmt, `the disposable template is unmarked again after ${full} at ${step}`);
      }
    }
    assert.equal(await auditValid(h), true);
    const log = readFileSync(auditLogPath(h.root), 'utf8');
    assert.equal(log.split('\n').filter((l) => l.includes('"failed"')).length, PATHS.reduce((n, p) => n + p[2].length, 0));
    // The same calls without faults succeed, so the faults, not the requests, were refused.
    assert.equal((await call(h, 'qmcp.Create+', { name: 'ai-f', template: 'ai-tpl' })).status, 0);
  } finally {
    await h.done();
  }
});

test('rollback: a removal that fails is loud: hidden, marked, recorded', async () => {
  const h = await startHost();
  try {
    const r = await call(h, 'qmcp.Create+', { name: 'ai-stuck', template: 'ai-tpl' }, {
      fault: (s) => {
        if (s !== 'umbrella') return;
        // Something outside now depends on the new qube, so qubesd will not remove it.
        const vault = h.vm('vault');
        if (vault) vault.props['netvm'] = 'ai-stuck';
        throw new Error('injected');
      },
    });
    assert.deepEqual(r, REFUSED);
    const vm = h.vm('ai-stuck');
    assert.ok(vm, 'removal failed, as arranged');
    assert.ok(vm.tags.includes('qmcp-incomplete'));
    assert.ok(vm.tags.includes('qmcp-rollback-failed'));
    assert.ok(!vm.tags.includes('ai-managed'), 'never left inside the umbrella');
    assert.ok(existsSync(join(h.root, 'var', 'lib', 'qmcp', 'rollback-failed', 'ai-stuck')));
    assert.match(readFileSync(auditLogPath(h.root), 'utf8'), /RollbackFailed/);
    assert.equal(await auditValid(h), true);
    // Hidden from the agent: the same answer as for an absent qube.
    assert.deepEqual(await call(h, 'qmcp.SetProperty+ai-stuck', { name: 'memory', value: 512 }), REFUSED);
  } finally {
    await h.done();
  }
});

test('rollback: a disposable started before it was hidden (a racing Start) is never completed', async () => {
  const h = await startHost();
  try {
    const before = names(h);
    const r = await call(h, 'qmcp.CreateDisposable+ai-dvm', { name: 'ai-race' }, {
      fault: (s) => {
        // Stands for the agent's Start winning the window between birth and the hiding marker.
        const vm = h.vm('ai-race');
        if (s === 'created' && vm) vm.power = 'Running';
      },
    });
    assert.deepEqual(r, REFUSED);
    assert.deepEqual(names(h), before);
  } finally {
    await h.done();
  }
});

/** A qubesd that makes the qube and then loses the reply, as a dropped connection would. */
class LostCreateReply extends Qubesd {
  override async call(method: string, dest: string, arg = '', payload?: string | Buffer): Promise<string> {
    const reply = await super.call(method, dest, arg, payload);
    if (method.startsWith('admin.vm.Create.')) throw new QubesdError('ConnectionClosed', 'empty or malformed reply from qubesd');
    return reply;
  }
}

test('rollback: a create whose reply is lost after qubesd made the qube leaves nothing behind', async () => {
  const h = await startHost();
  try {
    const before = names(h);
    const lossy = { ...h, qubesd: new LostCreateReply(h.sim.socketPath) };
    for (const [full, payload] of PATHS) {
      assert.deepEqual(await call(lossy, full, payload), REFUSED, full);
      assert.deepEqual(names(h), before, `${full}: the qube made behind the lost reply is removed`);
    }
    assert.equal(await auditValid(h), true);
  } finally {
    await h.done();
  }
});
