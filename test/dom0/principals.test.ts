// Two principals on one simulated host: each dom0 service call is scoped to the caller's principal, so a
// call about the other's qube gets the uniform refusal, byte for byte as for a name that does not exist.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { processDeps } from '../../src/dom0/create/deps.js';
import { loadDom0Config } from '../../src/dom0/service/config.js';
import { readPrincipalsFile, settingsPath } from '../../src/shared/model/index.js';
import type { ServiceMode } from '../../src/dom0/install/manifest.js';
import type { Fleet } from '../../src/sim/fleet.js';
import type { Reply, World } from '../services-read/helpers.js';
import { json, PRINCIPAL, startWorld, worldFleet } from '../services-read/helpers.js';
import { B, B_QUBES, B_SETTINGS } from './second-principal.js';

const fleet: Fleet = {
  ...worldFleet,
  qubes: [
    ...worldFleet.qubes,
    ...B_QUBES,
    { name: 'b-gone', klass: 'AppVM', template: 'tpl', label: 'red', tags: [`qmcp-owner-${B}`, 'qmcp-tombstone', 'qmcp-tombstone-at-20260101T000000Z'] },
  ],
};
const other = B_SETTINGS;

const same = (a: Reply, b: Reply): boolean => a.status === b.status && a.stdout.equals(b.stdout) && a.stderr.equals(b.stderr);
const names = (r: Reply): string[] => (json(r) as { qubes: { name: string }[]; sinks: string[] }).qubes.map((q) => q.name).sort();
const sinks = (r: Reply): string[] => (json(r) as { sinks: string[] }).sinks;

/** Calls naming a qube, for each principal: its own, the other's, and names that do not exist. */
const ABOUT = ['qmcp.Info', 'qmcp.Start', 'qmcp.Shutdown', 'qmcp.Renew', 'qmcp.Remove'];

async function withWorld(fn: (w: World) => Promise<void>, serviceMode: ServiceMode = 'per-call'): Promise<void> {
  const w = await startWorld({ mode: 'least-privilege', fleet, others: [other], serviceMode });
  try {
    await fn(w);
  } finally {
    await w.close();
  }
}

for (const mode of ['per-call', 'resident'] as const) test(`${mode}: each principal's calls are scoped to its world: the other's qubes answer as names that do not exist`, async () => {
  await withWorld(async (w) => {
    // each sees its own world, and only its own
    const listA = await w.call('qmcp.List', '', PRINCIPAL);
    const listB = await w.call('qmcp.List', '', B);
    assert.equal(listB.status, 0, listB.stderr.toString());
    assert.deepEqual([names(listB), sinks(listB)], [['b-runner'], ['b-dump']]);
    assert.ok(!sinks(listA).includes('b-dump'));
    assert.ok(names(listA).includes('ai-runner') && !names(listA).some((n) => n.startsWith('b-')), names(listA).join(','));
    assert.equal((await w.call('qmcp.Info+b-runner', '', B)).status, 0);

    for (const [caller, theirs, absent] of [[B, 'ai-runner', 'no-such-qube'], [PRINCIPAL, 'b-runner', 'b-nothing'], [B, 'ai-gone', 'b-nothing'], [PRINCIPAL, 'b-gone', 'no-such-qube']] as const) {
      for (const service of ABOUT) {
        const about = await w.call(`${service}+${theirs}`, '', caller);
        const none = await w.call(`${service}+${absent}`, '', caller);
        assert.ok(same(about, none), `${caller}: ${service}+${theirs} answers otherwise than +${absent}: ${about.status} ${about.stderr.toString()}`);
        assert.equal(about.stderr.toString(), 'Request refused\n', `${caller}: ${service}+${theirs}`);
      }
    }
    // the tombstones each may list are its own
    const tombsB = await w.call('qmcp.TombstoneList+', '', B);
    assert.equal(tombsB.status, 0);
    assert.ok(tombsB.stdout.toString().includes('b-gone') && !tombsB.stdout.toString().includes('ai-gone'));
  }, mode);
});

test("the caller picks the principal: without one, a file of several serves nobody; a stranger gets the first's, which the runner refuses", async () => {
  await withWorld(async (w) => {
    const root = join(w.dir, 'dom0');
    const reading = readPrincipalsFile(settingsPath(root));
    const warnings: string[] = [];
    const scope = (caller?: string): string | null => loadDom0Config(root, (m) => warnings.push(m), reading, caller)?.service.scope.umbrella ?? null;
    assert.deepEqual([scope(B), scope(PRINCIPAL), scope('vault'), scope()], ['b-managed', 'ai-managed', 'ai-managed', null]);
    assert.match(warnings.join('\n'), /several principals/);
    // the write services' settings (names, caps, birth ceiling) are the caller's too
    const write = (caller?: string): string => {
      const s = processDeps({ QMCP_ROOT: root, ...(caller ? { QREXEC_REMOTE_DOMAIN: caller } : {}) }, () => undefined).settings();
      return s.poolCap === null ? 'unusable' : `${s.prefix} ${s.scope.umbrella}`;
    };
    assert.deepEqual([write(B), write(PRINCIPAL), write()], ['b- b-managed', 'ai- ai-managed', 'unusable']);
  });
});
