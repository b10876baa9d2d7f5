// The MCP server in --sim mode reaches the router without a process per
// call: a runner whose client does not exist still makes every kind of
// call through the transport, with the same outcomes as the client gives.
// Without the transport (the weakened runner) the same calls fail to start.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { simTransport } from '../../src/cli/sim-principal.js';
import { QrexecRunner } from '../../src/principal/qrexec.js';
import type { QrexecOutcome } from '../../src/principal/qrexec.js';
import { PRINCIPAL, TIER_QUBES, startBoundary } from '../boundary/helpers.js';
import type { Boundary } from '../boundary/helpers.js';

let b: Boundary;
before(async () => {
  b = await startBoundary('least-privilege');
});
after(async () => {
  await b.close();
});

const NO_CLIENT = '/nonexistent/qrexec-client-vm';

/** A read through qubesd, a policy refusal, and a reply over its cap; how each ended. */
async function outcomes(runner: QrexecRunner): Promise<string[]> {
  const show = (o: QrexecOutcome): string => (o.kind === 'exited' ? `exited ${o.status} ${o.stdout.length > 0 ? 'with output' : 'empty'}` : o.kind === 'refused' ? 'refused' : `failed ${o.reason}`);
  return [
    show(await runner.call({ target: TIER_QUBES.full, service: 'admin.vm.CurrentState' })),
    show(await runner.call({ target: TIER_QUBES.full, service: 'admin.vm.tag.Set', argument: 'ai-full' })),
    show(await runner.call({ target: TIER_QUBES.full, service: 'admin.vm.CurrentState', maxOutput: 1 })),
  ];
}

test('--sim: calls reach the router through the transport, with no client process', async () => {
  assert.equal(PRINCIPAL, 'mcp-control');
  const runner = new QrexecRunner({ client: NO_CLIENT, transport: simTransport(b.host.dir) });
  assert.deepEqual(await outcomes(runner), ['exited 0 with output', 'refused', 'failed too-large']);
  assert.equal(runner.active, 0);
  // weakened: the runner without the transport starts the (missing) client for each call
  assert.deepEqual(await outcomes(new QrexecRunner({ client: NO_CLIENT })), ['failed spawn', 'failed spawn', 'failed spawn']);
});
