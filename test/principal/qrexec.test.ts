import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { QrexecAborted, QrexecRunner } from '../../src/principal/qrexec.js';
import { isAlive, makeFakeQrexec, sleeperPids, until, type FakeQrexec } from './fake-qrexec.js';

describe('qrexec runner', () => {
  let fake: FakeQrexec;
  before(async () => {
    fake = await makeFakeQrexec();
  });
  after(async () => {
    await fake.cleanup();
  });

  it('passes the payload, the target and SERVICE+ARG, and returns stdout', async () => {
    const r = new QrexecRunner({ client: fake.client, env: fake.env });
    const out = await r.call({ target: '@adminvm', service: 'qmcp.Start', argument: 'ai-work', payload: Buffer.from('{}') });
    assert.equal(out.kind, 'exited');
    assert.ok(out.kind === 'exited' && out.status === 0);
    assert.deepEqual(JSON.parse(out.stdout.toString()), { name: 'ai-work', state: 'Running' });
  });

  it('maps exit 126 to the refusal and carries no stderr', async () => {
    const r = new QrexecRunner({ client: fake.client, env: fake.env });
    const out = await r.call({ target: 'ai-refused', service: 'qmcp.Exec' });
    assert.deepEqual(out, { kind: 'refused' });
  });

  it('kills a child whose output passes the cap', async () => {
    const r = new QrexecRunner({ client: fake.client, env: fake.env, maxOutput: 1024 });
    assert.deepEqual(await r.call({ target: 'ai-huge', service: 'x' }), { kind: 'failed', reason: 'too-large' });
  });

  it('kills a child that runs past its timeout', async () => {
    const r = new QrexecRunner({ client: fake.client, env: fake.env });
    const out = await r.call({ target: 'ai-sleep', service: 'qmcp.Exec', timeoutMs: 300 });
    assert.deepEqual(out, { kind: 'failed', reason: 'timeout' });
    for (const pid of await sleeperPids(fake.dir)) await until(() => !isAlive(pid), 'the child to die');
  });

  it('kills the child on abort and answers nothing', async () => {
    const r = new QrexecRunner({ client: fake.client, env: fake.env });
    const ac = new AbortController();
    const before = new Set(await sleeperPids(fake.dir));
    const p = r.call({ target: 'ai-sleep', service: 'qmcp.Exec', signal: ac.signal });
    let pid = 0;
    await until(async () => {
      pid = (await sleeperPids(fake.dir)).find((x) => !before.has(x)) ?? 0;
      return pid !== 0;
    }, 'the child to start');
    ac.abort();
    await assert.rejects(p, QrexecAborted);
    await until(() => !isAlive(pid), 'the child to die');
    assert.equal(r.active, 0);
  });

  it('runs no more children at once than its concurrency', async () => {
    const r = new QrexecRunner({ client: fake.client, env: fake.env, concurrency: 1 });
    const ac = new AbortController();
    const before = new Set(await sleeperPids(fake.dir));
    const first = r.call({ target: 'ai-sleep', service: 'qmcp.Exec', signal: ac.signal });
    const second = r.call({ target: '@adminvm', service: 'qmcp.Start', argument: 'ai-work', signal: ac.signal });
    await until(async () => (await sleeperPids(fake.dir)).some((x) => !before.has(x)), 'the first child');
    assert.equal(r.active, 1);
    const both = Promise.all([assert.rejects(first, QrexecAborted), assert.rejects(second, QrexecAborted)]);
    ac.abort();
    await both;
  });

  it('reports a client that cannot be spawned as a failure', async () => {
    const r = new QrexecRunner({ client: fake.client + '-missing', env: fake.env });
    assert.deepEqual(await r.call({ target: 'ai-work', service: 'x' }), { kind: 'failed', reason: 'spawn' });
  });
});
