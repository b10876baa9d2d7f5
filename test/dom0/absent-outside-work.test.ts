/**
 * A dom0 service does the same work for a target that exists nowhere as
 * for one outside the umbrella, up to the refusal: the same Admin API calls
 * and the same reads of the settings, for every service the timing check
 * times, in the form it times. A difference here is a difference of time
 * the agent can measure (the timing check reads one of a settings read,
 * about 0.2 ms, at |t| 12 to 22); this finds it without a clock.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Qubesd } from '../../src/dom0/qubesd.js';
import type { ServiceSpec } from '../../src/dom0/service/run.js';
import { readQube } from '../../src/dom0/service/snapshot.js';
import type { Snapshot } from '../../src/dom0/service/snapshot.js';
import { serviceTable } from '../../src/dom0/services/index.js';
import { ownTombstone } from '../../src/dom0/services/tombstones.js';
import { OPERATIONS } from '../../src/shared/model/capabilities.js';
import { startProxy } from '../../verify/faults/proxy.js';
import { weakenedFile } from '../../verify/weakened-module.js';
import { ABSENT, OUTSIDE } from '../../verify/timing/check.js';
import { serviceCall, timingApplies } from '../../verify/timing/forms.js';
import { BASE_SETTINGS, call, startHost, testFleet } from '../services-write/helpers.js';

type Table = typeof serviceTable;

/** Per timed service, what differs between the absent and the outside target; empty when nothing does. */
async function differences(table: Table = serviceTable): Promise<string[]> {
  const h = await startHost({ ...BASE_SETTINGS, birthCeiling: 'full' }, testFleet());
  const proxy = await startProxy(h.sim.socketPath, join(h.root, 'proxy.sock'));
  const viaProxy = new Qubesd(proxy.socketPath);
  try {
    const out: string[] = [];
    const ops = OPERATIONS.filter((op) => op.target === 'dom0-service' && timingApplies(op));
    assert.ok(ops.length >= 15, 'the timed dom0 services');
    for (const op of ops) {
      const work = async (qube: string): Promise<string> => {
        const form = serviceCall(op, qube);
        assert.ok(form, `${op.service} has a timing form`);
        let settingsReads = 0;
        const counting: Table = (deps) => {
          if (!deps) throw new Error('the call passes its deps');
          return table({ ...deps, write: { ...deps.write, settings: () => (settingsReads++, deps.write.settings()) } });
        };
        const from = proxy.calls.length;
        const r = await call(h, form[0], form[1], { qubesd: viaProxy, serviceTable: counting });
        assert.equal(r.status, 126, `${form[0]} is refused`);
        // the calls in the order made, each with its destination as absent or outside alike
        const calls = proxy.calls.slice(from).map((c) => `${c.method} ${c.dest === qube ? 'TARGET' : c.dest}`);
        return JSON.stringify({ settingsReads, calls });
      };
      const [absent, outside] = [await work(ABSENT), await work(OUTSIDE)];
      if (absent !== outside) out.push(`${op.service}: absent ${absent}, outside ${outside}`);
    }
    return out;
  } finally {
    await proxy.close();
    await h.done();
  }
}

test('every timed dom0 service reads the same settings and makes the same Admin API calls for an absent target as for an outside one', async () => {
  assert.deepEqual(await differences(), []);
});

test('weakened: a restore that reads the settings only for a qube that exists is caught', async () => {
  const leaky: Table = (deps) => {
    if (!deps) throw new Error('the call passes its deps');
    const real = serviceTable(deps);
    const restore = real.get('qmcp.TombstoneRestore') as ServiceSpec<unknown>;
    const admits = (input: unknown, snapshot: Snapshot, principal: string): string | null => {
      const q = snapshot.any((input as { name: string }).name);
      return q && ownTombstone(q.tags, deps.write.settings().scope, principal) ? null : 'not a tombstone of this principal';
    };
    return new Map([...real, ['qmcp.TombstoneRestore', { ...restore, admits }]]);
  };
  const found = await differences(leaky);
  assert.equal(found.length, 1, found.join('\n'));
  assert.match(found[0] ?? '', /^qmcp\.TombstoneRestore: absent \{"settingsReads":\d+/);
});

/** A client whose throwing call is refused: a read through it must take qubesd's exceptions as values. */
class ValuesOnly extends Qubesd {
  override call(): Promise<string> {
    return Promise.reject(new Error('a named read went through call, which throws for an absent qube'));
  }
}

async function readsByValue(read: typeof readQube): Promise<void> {
  const h = await startHost(BASE_SETTINGS, testFleet());
  try {
    const qubesd = new ValuesOnly(h.sim.socketPath);
    assert.equal(await read(qubesd, ABSENT), undefined);
    assert.deepEqual(await read(qubesd, OUTSIDE), { name: OUTSIDE, klass: 'AppVM', state: 'Halted', tags: new Set(['ai-full', 'audiovm-dom0', 'guivm-dom0']) });
  } finally {
    await h.done();
  }
}

test('a named read takes "no such qube" as a value, not a throw (which costs microseconds more), and reads a qube that exists alike', async () => {
  await readsByValue(readQube);
});

test('weakened: a named read through the throwing call is caught', async () => {
  const path = weakenedFile('dom0/service/snapshot', "qubesd.reply('admin.vm.List', name)", "qubesd.call('admin.vm.List', name).then((text) => ({ ok: true, text }))");
  const weak = (await import(pathToFileURL(path).href)) as { readQube: typeof readQube };
  await assert.rejects(readsByValue(weak.readQube), /went through call/);
});
