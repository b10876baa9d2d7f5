/**
 * The simulated qubesd against real qubesd's recorded answers
 * (test/fixtures/qubesd/calls.json: qubes-core-admin's own Admin API run
 * offline by scripts/qubesd-check/run.sh --record, over the demo fleet).
 * Every reply must agree after the recording's normalisation, except the
 * differences named below, each with its reason (docs/fidelity.md, "Remaining
 * differences from the real qubesd"). An accepted difference that no longer
 * occurs fails too, so the list shrinks as the simulator closes them.
 */
import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { DEMO_SECOND_QUBES, demoFleet } from '../../src/sim/demo-fleet.js';
import { fleetState } from '../../src/sim/fleet.js';
import { startQubesd } from '../../src/sim/qubesd/index.js';
import { compiled, weakenedFile } from '../../verify/weakened-module.js';
import type { Difference, Recording } from './recorded-replay.js';
import { loadRecording, replay } from './recorded-replay.js';
import { removeDir } from './helpers.js';

interface Accepted {
  readonly name: string;
  readonly reason: string;
  readonly match: (d: Difference) => boolean;
}

const is = (d: Difference, method: RegExp, arg?: RegExp, dest?: RegExp): boolean =>
  method.test(d.step.method) && (arg === undefined || arg.test(d.step.arg)) && (dest === undefined || dest.test(d.step.dest));
/** Only these lines of a multi-line reply differ. */
const onlyLines = (d: Difference, line: RegExp): boolean => {
  const real = (d.step.reply ?? '').split('\n');
  const sim = d.got.split('\n');
  return [...real.filter((l) => !sim.includes(l)), ...sim.filter((l) => !real.includes(l))].every((l) => line.test(l));
};

const ACCEPTED: readonly Accepted[] = [
  {
    name: 'label reset',
    reason: 'deliberate: qubesd unsets the label and leaves a qube without one; the simulator refuses',
    match: (d) => is(d, /^admin\.vm\.property\.(Reset|Get)$/, /^label$/),
  },
  {
    name: 'default_kernel reset',
    reason: 'qubesd unsets default_kernel, then closes failing to save a store whose kernels have no default: a crash not worth copying',
    match: (d) => d.step.reply === '' && is(d, /^admin\.property\.Reset$/, /^default_kernel$/),
  },
  {
    name: 'disposable identity',
    reason: "a DispVM's ip follows its dispid, which qubesd draws at random",
    match: (d) => is(d, /^admin\.vm\.property\.GetAll$/) && onlyLines(d, /^(visible_)?ip default=True type=str 10\.138\.\d+\.\d+$/),
  },
];

let recording: Recording;
before(() => {
  recording = loadRecording();
});

interface Served {
  readonly socketPath: string;
  close(): Promise<void>;
}

async function unexplained(start: () => Promise<Served>): Promise<{ compared: number; left: Difference[]; stale: string[] }> {
  const served = await start();
  try {
    const { compared, differences } = await replay(served.socketPath, recording);
    const used = new Set<string>();
    const left = differences.filter((d) => {
      const rule = ACCEPTED.find((a) => a.match(d));
      if (rule) used.add(rule.name);
      return !rule;
    });
    return { compared, left, stale: ACCEPTED.filter((a) => !used.has(a.name)).map((a) => a.name) };
  } finally {
    await served.close();
  }
}

/** A simulated qubesd from `startQubesd` on a fresh directory, seeded with the recording's fleet. */
async function serve(startQubesd: typeof import('../../src/sim/qubesd/index.js').startQubesd): Promise<Served> {
  const dir = await mkdtemp(join(tmpdir(), 'qmcp-recorded-'));
  const qubesd = await startQubesd({ dir, seed: () => fleetState(recording.fleet) });
  return {
    socketPath: qubesd.socketPath,
    close: async () => {
      await qubesd.close();
      await removeDir(dir);
    },
  };
}

const show = (ds: Difference[]): string =>
  ds
    .slice(0, 10)
    .map((d) => `#${d.step.index} ${d.step.method}+${d.step.arg} ${d.step.dest} ${JSON.stringify(d.step.payload)}\n  real ${JSON.stringify(d.step.reply)}\n  sim  ${JSON.stringify(d.got)}`)
    .join('\n');

test("the recording names its sources and the fleet it was made on, which is the demo fleet without its second agent's qubes", () => {
  assert.match(recording.qubesCoreAdmin, /^[0-9a-f]{40}$/);
  assert.match(recording.qubesCoreQrexec, /^[0-9a-f]{40}$/);
  assert.equal(typeof recording.seed, 'number');
  // a changed demo fleet needs a new recording (scripts/qubesd-check/run.sh --record)
  const demo = demoFleet();
  const recorded = { ...demo, qubes: demo.qubes.filter((q) => !DEMO_SECOND_QUBES.includes(q.name)) };
  assert.deepEqual(recording.fleet, JSON.parse(JSON.stringify(recorded)));
  assert.ok(recording.steps.length > 500, 'a few hundred calls at least');
});

test('the simulator answers every recorded call as real qubesd did, but for the accepted differences', async () => {
  const { compared, left, stale } = await unexplained(() => serve(startQubesd));
  assert.ok(compared > 500);
  assert.deepEqual(left, [], `differences no accepted one explains:\n${show(left)}`);
  assert.deepEqual(stale, [], 'accepted differences that no longer occur: drop them from the list and docs/fidelity.md');
});

test('a weakened simulator that takes a negative qrexec_timeout is caught', async () => {
  const values = weakenedFile('sim/qubesd/property-values', "case 'qrexec_timeout':", "case 'no-such-property':");
  const props = weakenedFile('sim/qubesd/app-properties', 'export class AppProperties', 'export class AppProperties', { [compiled('sim/qubesd/property-values')]: values });
  const app = weakenedFile('sim/qubesd/app', 'export class SimApp', 'export class SimApp', { [compiled('sim/qubesd/app-properties')]: props });
  const index = weakenedFile('sim/qubesd/index', 'export async function startQubesd', 'export async function startQubesd', { [compiled('sim/qubesd/app')]: app });
  const weak = (await import(pathToFileURL(index).href)) as typeof import('../../src/sim/qubesd/index.js');
  const { left } = await unexplained(() => serve(weak.startQubesd));
  assert.ok(
    left.some((d) => d.step.method === 'admin.vm.property.Set' && d.step.arg === 'qrexec_timeout' && d.step.payload === '-1'),
    `the negative qrexec_timeout is not among the unexplained differences:\n${show(left)}`,
  );
});

test('a weakened simulator that takes an assignment payload with an unknown key is caught', async () => {
  const device = weakenedFile('sim/qubesd/methods/device', 'if (!ASSIGNMENT_KEYS.has(k))', 'if (k === "")');
  const methods = weakenedFile('sim/qubesd/methods/index', 'export const adminMethods', 'export const adminMethods', { [compiled('sim/qubesd/methods/device')]: device });
  const index = weakenedFile('sim/qubesd/index', 'export async function startQubesd', 'export async function startQubesd', { [compiled('sim/qubesd/methods/index')]: methods });
  const weak = (await import(pathToFileURL(index).href)) as typeof import('../../src/sim/qubesd/index.js');
  const { left } = await unexplained(() => serve(weak.startQubesd));
  assert.ok(
    left.some((d) => /^admin\.vm\.device\.(block|pci)\.Assign$/.test(d.step.method) && d.step.payload === 'bad'),
    `the Assign with the payload 'bad' is not among the unexplained differences:\n${show(left)}`,
  );
});
