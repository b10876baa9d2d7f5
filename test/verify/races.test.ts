import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Qubesd } from '../../src/dom0/qubesd.js';
import type { CheckReport } from '../../verify/check.js';
import { makeRacesCheck, racesCheck } from '../../verify/races/check.js';
import { weakenedGateRunner } from '../../verify/weakened-module.js';

const SEED = 1999;

/**
 * The check's runs, each on a simulated host of its own, all started at
 * once: a run spends most of its time waiting on its host (sandboxes, the
 * gate's polls, the audit log's syncs), so together they take little longer
 * than the longest alone. Their holds are barriers, not delays: a loaded
 * machine makes them slower, never different.
 */
const runs = new Map<string, Promise<CheckReport>>();
function started(name: string, run: () => Promise<CheckReport>): Promise<CheckReport> {
  let p = runs.get(name);
  if (p === undefined) {
    p = run();
    // judged by the test that awaits it; until then a rejection is not unhandled
    p.catch(() => undefined);
    runs.set(name, p);
  }
  return p;
}
/** The real check's run, shared by the tests that judge it. */
const report = (): Promise<CheckReport> => started('real', () => racesCheck.run({ scale: 1 }, SEED));

test('a qube being created, cloned or made disposable is refused as if absent until complete', async () => {
  const r = await report();
  assert.deepEqual(r.failures.filter((f) => / held at /.test(f.what)), []);
  const figure = (label: string): number => Number(r.figures.find((f) => f.label === label)?.value ?? 0);
  assert.ok(figure('held moments') >= 25);
  assert.ok(figure('racing attempts') >= 150);
});

test('a gated call whose qube is lowered or hidden while it waits for the operator is refused after the approval', async () => {
  const r = await report();
  assert.deepEqual(r.failures.filter((f) => /while it waited|the control round|the gate races/.test(`${f.what} ${f.reproduction}`)), []);
  const figure = (label: string): number => Number(r.figures.find((f) => f.label === label)?.value ?? 0);
  assert.equal(figure('gate: calls whose qube was lowered or hidden while they waited'), 10);
  assert.equal(figure('gate: of them refused after the approval'), 10);
});

const uncheckedGate = (): Promise<CheckReport> =>
  started('unchecked gate', async () => {
    const runner = await weakenedGateRunner("if (typeof targets === 'string')", 'if (false)');
    return makeRacesCheck({ runner, entombing: false, operations: [] }).run({ scale: 1 }, SEED);
  });

test('a gate that acts on its approval without checking the targets again is caught', async () => {
  const r = await uncheckedGate();
  const hit = r.failures.find((f) => /^property\.set of ai-gate, its tier lowered while it waited, went on after the approval: \{"status":0,.*machine changed/.test(f.what));
  assert.ok(hit, JSON.stringify(r.failures.slice(0, 3)));
});

test('a qube being entombed is refused as if absent from the moment it is hidden', async () => {
  const r = await report();
  assert.deepEqual(r.failures.filter((f) => /while entombed/.test(f.what)), []);
});

/** A qubesd that swallows the hiding tag: what the platform copies into a disposable is then visible at once. */
class NeverHidden extends Qubesd {
  override async call(method: string, dest: string, arg = '', payload?: string | Buffer): Promise<string> {
    if (method === 'admin.vm.tag.Set' && arg === 'qmcp-incomplete') return '';
    return super.call(method, dest, arg, payload);
  }
}

const neverHidden = (): Promise<CheckReport> =>
  started('never hidden', () => makeRacesCheck({ qubesd: (real) => new NeverHidden(real.socketPath), entombing: false, operations: ['disposable'], gateRaces: false }).run({ scale: 1 }, SEED));

test('a create that never hides what it makes is caught', async () => {
  const r = await neverHidden();
  const hit = r.failures.find((f) => /held at disposable step/.test(f.what));
  assert.ok(hit, JSON.stringify(r.failures.slice(0, 3)));
  assert.match(hit.reproduction, /--seed 1999 --scale 1 --only races/);
});

/** A qubesd that drops the start hold an entombing sets: a start decided before the remove can then run the tombstone. */
class NoStartHold extends Qubesd {
  override async call(method: string, dest: string, arg = '', payload?: string | Buffer): Promise<string> {
    if (method === 'admin.vm.feature.Set' && arg === 'prohibit-start') return '';
    return super.call(method, dest, arg, payload);
  }
}

const noStartHold = (): Promise<CheckReport> =>
  started('no start hold', () => makeRacesCheck({ qubesd: (real) => new NoStartHold(real.socketPath), operations: [], gateRaces: false }).run({ scale: 1 }, SEED));

test('an entombing without the start hold is caught running a tombstone that a late start woke', async () => {
  const r = await noStartHold();
  const hit = r.failures.find((f) => /remove of ai-e0 answered success but left Running/.test(f.what));
  assert.ok(hit, JSON.stringify(r.failures.slice(0, 3)));
});

/** A qubesd that takes a tombstone's hiding tag off as its umbrella goes back on: a restore then shows the qube while it changes. */
class RestoreUnhidden extends Qubesd {
  override async call(method: string, dest: string, arg = '', payload?: string | Buffer): Promise<string> {
    const hiding = 'qmcp-tombstone';
    if (method === 'admin.vm.tag.Set' && arg === 'ai-managed' && (await this.tags(dest)).includes(hiding)) await super.call('admin.vm.tag.Remove', dest, hiding);
    if (method === 'admin.vm.tag.Remove' && arg === hiding && !(await this.tags(dest)).includes(arg)) return '';
    return super.call(method, dest, arg, payload);
  }
}

const restoreUnhidden = (): Promise<CheckReport> =>
  started('restore unhidden', () => makeRacesCheck({ qubesd: (real) => new RestoreUnhidden(real.socketPath), operations: [], gateRaces: false }).run({ scale: 1 }, SEED));

test('a restore that shows the qube before it is done is caught', async () => {
  const r = await restoreUnhidden();
  assert.ok(r.failures.some((f) => /while restored, before its/.test(f.what)), JSON.stringify(r.failures.slice(0, 3)));
});

// every run started now, each judged by its test above
for (const run of [report, uncheckedGate, neverHidden, noStartHold, restoreUnhidden]) void run();
