import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BASE_SETTINGS, REFUSED, auditValid, call, json, startHost } from './helpers.js';
import type { Host } from './helpers.js';

const code = (r: Awaited<ReturnType<typeof call>>): string => (json(r)['error'] as { code: string }).code;

async function set(h: Host, qube: string, name: string, value: unknown): Promise<Awaited<ReturnType<typeof call>>> {
  return call(h, `qmcp.SetProperty+${qube}`, { name, value });
}

test('memory, maxmem and vcpus: up to the operator\'s limit of one qube, one past it out_of_range with the range', async () => {
  const h = await startHost();
  try {
    // Qubes' own defaults when the operator set none: 4096 MiB, 2 vcpus
    assert.equal((await set(h, 'ai-box', 'memory', 4096)).status, 0);
    assert.equal(h.vm('ai-box')?.props['memory'], 4096);
    const over = await set(h, 'ai-box', 'memory', 4097);
    assert.deepEqual(json(over), { error: { code: 'out_of_range', message: 'the value must be from 1 to 4096 MiB on this host' } });
    assert.equal(h.vm('ai-box')?.props['memory'], 4096, 'nothing set');
    assert.equal(code(await set(h, 'ai-box', 'memory', 0)), 'out_of_range');
    assert.equal((await set(h, 'ai-box', 'maxmem', 0)).status, 0, 'maxmem 0: no balancing, as in Qubes');
    assert.equal(code(await set(h, 'ai-box', 'maxmem', 4097)), 'out_of_range');
    assert.equal((await set(h, 'ai-box', 'vcpus', 2)).status, 0);
    assert.deepEqual(json(await set(h, 'ai-box', 'vcpus', 3)), { error: { code: 'out_of_range', message: 'the value must be from 1 to 2 on this host' } });
    // the operator's figure moves the bound
    h.writeSettings({ ...BASE_SETTINGS, qubeLimits: { memoryMiB: 16384, vcpus: 8 } });
    assert.equal((await set(h, 'ai-box', 'memory', 16384)).status, 0);
    assert.equal((await set(h, 'ai-box', 'vcpus', 8)).status, 0);
    assert.equal(code(await set(h, 'ai-box', 'vcpus', 9)), 'out_of_range');
    assert.equal(await auditValid(h), true);
  } finally {
    await h.done();
  }
});

test('a malformed qubeLimits refuses memory, maxmem and vcpus actionably (limits_unset); the other properties stay settable', async () => {
  const h = await startHost();
  try {
    for (const bad of ['4096', { memoryMiB: 4096 }, { memoryMiB: 0, vcpus: 2 }, { memoryMiB: 4096, vcpus: 2.5 }, { memoryMiB: 4096, vcpus: 2, extra: 1 }, null]) {
      h.writeSettings({ ...BASE_SETTINGS, qubeLimits: bad });
      for (const p of ['memory', 'maxmem', 'vcpus']) assert.equal(code(await set(h, 'ai-box', p, 1)), 'limits_unset', `${p} with ${JSON.stringify(bad)}`);
      assert.equal((await set(h, 'ai-box', 'label', 'green')).status, 0);
    }
  } finally {
    await h.done();
  }
});

test('a value\'s own mistakes are answered before any lookup: the same for a visible, an outside and an absent qube; a good value on those is the refusal', async () => {
  const h = await startHost();
  try {
    const cases: [string, unknown, string][] = [
      ['memory', 1 << 20, 'out_of_range'],
      ['vcpus', 64, 'out_of_range'],
      ['memory', '400', 'bad_value'],
      ['memory', 1.5, 'bad_value'],
      ['autostart', 'yes', 'bad_value'],
      ['label', 'pink', 'unknown_label'],
    ];
    for (const [name, value, want] of cases) {
      const answers = [];
      // one at a time: calls past the slot bound would be refused for that reason instead
      for (const q of ['ai-box', 'vault', 'nosuch', 'ai-execbox']) answers.push(await set(h, q, name, value));
      for (const r of answers) {
        assert.equal(code(r), want, `${name} ${JSON.stringify(value)}`);
        assert.deepEqual(r, answers[0]);
      }
    }
    for (const q of ['vault', 'nosuch', 'ai-execbox']) assert.deepEqual(await set(h, q, 'memory', 512), REFUSED, q);
    // netvm to a qube is never allowed: the refusal, not an error to fix
    assert.deepEqual(await set(h, 'ai-box', 'netvm', 'ai-egress'), REFUSED);
  } finally {
    await h.done();
  }
});
