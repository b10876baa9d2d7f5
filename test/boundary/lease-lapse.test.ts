import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openAudit } from '../../src/dom0/audit/index.js';
import { acquireBudgetLock } from '../../src/dom0/create/lock.js';
import { readWriteSettings } from '../../src/dom0/create/settings.js';
import { expireLeases } from '../../src/dom0/leases/expire.js';
import { LEASE_FEATURE } from '../../src/shared/model/lease.js';
import { encodeExecRequest, encodeJobListRequest } from '../../src/shared/inqube-protocol.js';
import { dom0Root } from '../../src/sim/host.js';
import { ABSENT, PRINCIPAL, TIER_QUBES, startBoundary } from './helpers.js';

const QUBE = TIER_QUBES.exec;

test('lease: a lapse while a command runs ends its qube as a remove would; the next call is the uniform refusal', async () => {
  const b = await startBoundary('least-privilege');
  try {
    await b.ensureRunning();
    // as the create services leave a qube of the agent's: its owner tag and an expiry
    await b.admin.call('admin.vm.tag.Set', QUBE, 'qmcp-owner-mcp-control');
    await b.admin.call('admin.vm.feature.Set', QUBE, LEASE_FEATURE, '2026-11-01T13:00:00Z');
    // the barrier: the job start answers once the command runs
    const started = await b.call(PRINCIPAL, QUBE, 'qmcp.JobStart', encodeExecRequest({ shell: 'sleep 600' }));
    assert.equal(started.status, 0, started.stderr);
    const list = (): ReturnType<typeof b.call> => b.call(PRINCIPAL, QUBE, 'qmcp.JobList', encodeJobListRequest());
    // the job is listed still running (no exit status), its command in base64
    const running = new RegExp(`^[0-9a-f]{12} \\d+ - \\d+ ${Buffer.from('sleep 600').toString('base64')}$`, 'm');
    assert.match((await list()).stdout, running);

    const root = dom0Root(b.host.dir);
    const r = await expireLeases(
      { qubesd: b.admin, settings: readWriteSettings(root, () => undefined), audit: openAudit({ root }), lock: () => acquireBudgetLock(root, 5_000) },
      new Date(Date.UTC(2026, 10, 1, 13, 0, 0)),
    );
    assert.deepEqual(r.expired, [QUBE]);
    assert.equal(b.power(QUBE), 'Halted', 'the command ended with its qube');
    await b.host.router.refresh();
    const absent = await b.call(PRINCIPAL, ABSENT, 'qmcp.JobList', encodeJobListRequest());
    assert.deepEqual(await list(), absent);
    assert.equal(absent.status, 126);
    assert.deepEqual(await b.call(PRINCIPAL, '@adminvm', `qmcp.Info+${QUBE}`), await b.call(PRINCIPAL, '@adminvm', `qmcp.Info+${ABSENT}`));
  } finally {
    await b.close();
  }
});
