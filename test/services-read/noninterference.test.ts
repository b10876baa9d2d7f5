import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Fleet } from '../../src/sim/fleet.js';
import { envServiceMode } from '../../src/sim/host.js';
import { startWorld, worldFleet } from './helpers.js';
import type { Reply } from './helpers.js';

/** The same umbrella; outside it, more qubes, other names, tags, properties, states and devices. */
const noisyFleet: Fleet = {
  ...worldFleet,
  qubes: [
    ...worldFleet.qubes.map((q) => (q.name === 'vault' ? { ...q, label: 'red', tags: ['secret', 'ai-exec'] } : q)),
    { name: 'ai-lookalike', klass: 'AppVM', template: 'tpl', label: 'red', tags: ['ai-full'] },
    { name: 'banking', klass: 'StandaloneVM', label: 'green' },
    { name: 'work-dvm', klass: 'AppVM', template: 'tpl', label: 'red', properties: { template_for_dispvms: true } },
    { name: 'old-gone', klass: 'AppVM', template: 'tpl', label: 'red', tags: ['qmcp-owner-intruder', 'qmcp-tombstone'] },
  ],
  devices: {
    block: {
      ...worldFleet.devices?.['block'],
      banking: [{ port: 'sdb', devid: 'token', description: 'hardware token', interfaces: 'b******' }],
    },
  },
};

const CALLS = [
  'qmcp.List',
  'qmcp.Info+ai-viewer',
  'qmcp.Info+ai-runner',
  'qmcp.Info+banking',
  'qmcp.Info+ai-lookalike',
  'qmcp.Info+nosuch',
  'qmcp.Start+banking',
  'qmcp.Start+ai-runner',
  'qmcp.Start+ai-gw',
  'qmcp.PoolFigures',
  'qmcp.DeviceList',
  'qmcp.List',
];

/** Resident unless QMCP_DOM0_SERVICE_MODE says otherwise: per call, each call starts a Node process; the replies are read alike. */
const serviceMode = envServiceMode() ?? 'resident';

async function transcript(fleet: Fleet, mode: 'compat' | 'least-privilege'): Promise<Reply[]> {
  const w = await startWorld({ mode, fleet, serviceMode });
  try {
    const out: Reply[] = [];
    for (const c of CALLS) out.push(await w.call(c));
    return out;
  } finally {
    await w.close();
  }
}

for (const mode of ['least-privilege', 'compat'] as const) {
  test(`what the principal sees does not depend on qubes outside its world (${mode})`, async () => {
    const [quiet, noisy] = await Promise.all([transcript(worldFleet, mode), transcript(noisyFleet, mode)]);
    for (let i = 0; i < CALLS.length; i++) {
      const a = quiet[i] as Reply;
      const b = noisy[i] as Reply;
      assert.equal(b.status, a.status, CALLS[i]);
      assert.equal(b.stdout.toString('latin1'), a.stdout.toString('latin1'), CALLS[i]);
      assert.equal(b.stderr.toString('latin1'), a.stderr.toString('latin1'), CALLS[i]);
    }
    assert.equal(quiet[7]?.status, 0, 'the transcript includes successes');
  });
}
