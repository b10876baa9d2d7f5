// The boundary with the dom0 services served by the resident process: the
// invariants (invariant-cases.ts), and the raw bytes the principal reads,
// with no translation into the executable's replies.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { OPERATIONS } from '../../src/shared/model/index.js';
import { REFUSAL_REPLY } from '../../src/shared/service-reply.js';
import { dom0Root } from '../../src/sim/host.js';
import { qrexecCollect } from '../../src/sim/qrexec/index.js';
import { boundarySuite } from './invariant-cases.js';
import { ABSENT, OUTSIDE, PRINCIPAL, REFUSED, TIER_QUBES, startBoundary } from './helpers.js';
import type { Boundary } from './helpers.js';

boundarySuite('resident');

/** A reply as the principal's qrexec-client-vm gives it, bytes untouched. */
interface Raw {
  readonly status: number;
  readonly stdout: string;
  readonly stderr: string;
}

const ONE_REFUSAL: Raw = { status: 0, stdout: REFUSAL_REPLY.toString('latin1'), stderr: '' };

describe('resident dom0 services: the raw bytes the principal reads', () => {
  let b: Boundary;
  const raw = async (service: string, payload = ''): Promise<Raw> => {
    const r = await qrexecCollect(b.host.router.socketFor(PRINCIPAL), '@adminvm', service, payload);
    return { status: r.status, stdout: r.stdout.toString('latin1'), stderr: r.stderr.toString('latin1') };
  };
  before(async () => {
    b = await startBoundary('least-privilege', { serviceMode: 'resident' });
  });
  after(async () => {
    await b.close();
  });

  test('every dom0 service is a socket the resident process serves', () => {
    assert.ok(b.host.resident?.pid());
    for (const op of OPERATIONS.filter((o) => o.target === 'dom0-service')) {
      assert.ok(statSync(join(dom0Root(b.host.dir), 'etc', 'qubes-rpc', op.service)).isSocket(), op.service);
    }
  });

  test('every refusal of every dom0 service naming a qube is the one refusal reply, byte for byte, exit 0', async () => {
    const below = TIER_QUBES.read;
    for (const op of OPERATIONS.filter((o) => o.target === 'dom0-service' && o.argumentIsQube)) {
      for (const qube of [ABSENT, OUTSIDE, 'dom0', below, `${ABSENT}+x`]) {
        const r = await raw(`${op.service}+${qube}`, '{"not": "a payload"');
        assert.deepEqual(r, ONE_REFUSAL, `${op.service}+${qube}`);
      }
    }
    // and a service the model does not have: the policy's refusal, as in per-call mode
    assert.deepEqual(await raw('qmcp.NoSuchService'), REFUSED);
  });

  test('a policy line refusing one argument gives other bytes than the service refusal, and the helper shows them apart', async () => {
    const file = join(dom0Root(b.host.dir), 'etc', 'qubes', 'policy.d', '10-weakened.policy');
    const absent = await raw(`qmcp.Info+${ABSENT}`);
    writeFileSync(file, `qmcp.Info +${OUTSIDE} ${PRINCIPAL} @adminvm deny\n`);
    try {
      assert.notDeepEqual(await raw(`qmcp.Info+${OUTSIDE}`), absent);
      assert.notDeepEqual(await b.call(PRINCIPAL, '@adminvm', `qmcp.Info+${OUTSIDE}`), await b.call(PRINCIPAL, '@adminvm', `qmcp.Info+${ABSENT}`));
    } finally {
      unlinkSync(file);
    }
    assert.deepEqual(await raw(`qmcp.Info+${OUTSIDE}`), absent);
  });
});
