/**
 * The noninterference check's event window counts only when every act's
 * row came through in it, the marker dom0 sets after them included; a
 * window the acts outlast is late, tried again longer, never compared.
 * What a call did is read as the executable answers: a resident service's
 * refusal is raw status 0, its 126 in the trailer.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Call, Observation } from '../../verify/noninterference/calls.js';
import { asExecutable, rawCall } from '../../verify/noninterference/calls.js';
import type { Machine } from '../../verify/noninterference/machines.js';
import { startMachine, stopMachine } from '../../verify/noninterference/machines.js';
import { eventWindow } from '../../verify/noninterference/observe.js';
import { PRINCIPAL } from '../../verify/malformed/host.js';
import { qrexecService } from '../../verify/qrexec-service.js';
import { weakened } from '../plans/helpers.js';

test('a window that closed before the agent acted is late', async () => {
  const m = await startMachine('A', [], 4242, { mode: 'least-privilege', birthCeiling: 'exec' });
  try {
    // the agent's acts wait for the window to have answered: a machine too slow for it
    let window: Promise<Observation> | null = null;
    const slow = async (on: Machine, c: Call): Promise<Observation> => {
      if (c.service.startsWith('qmcp.Events+')) return (window = rawCall(on, c));
      await window;
      return rawCall(on, c);
    };
    const r = await eventWindow(m, slow, 1);
    assert.equal(r.observation.status, 0, r.observation.stderr);
    assert.equal(r.late, true, r.observation.stdout);
  } finally {
    await stopMachine(m);
  }
});

test("a window that holds the marker but not an act's row is late", async () => {
  // weakened: only the last act's row (the marker's) is asked
  const markerOnly = weakened('../verify/noninterference/observe.js', '!holdsEvery(windowRows(o.stdout), acts)', '!holdsEvery(windowRows(o.stdout), acts.slice(-1))');
  const { eventWindow: markerWindow } = (await import(markerOnly)) as { eventWindow: typeof eventWindow };
  const m = await startMachine('A', [], 4242, { mode: 'least-privilege', birthCeiling: 'exec' });
  try {
    // the memory act answers success without reaching dom0: its row never comes, the marker's does
    const unheard = async (on: Machine, c: Call): Promise<Observation> =>
      c.service.startsWith('qmcp.SetProperty+') ? { status: 0, stdout: JSON.stringify({ name: 'memory', value: 700 }), stderr: '' } : rawCall(on, c);
    const real = await eventWindow(m, unheard, 6);
    assert.equal(real.observation.status, 0, real.observation.stderr);
    assert.ok(real.acts.some((a) => a.qube === 'ai-peer'), JSON.stringify(real.acts));
    assert.equal(real.late, true, real.observation.stdout);
    // the weakened check counts a window once the marker is in it: longer ones on a loaded machine, as the check tries
    let counted = false;
    for (const seconds of [6, 15, 40]) {
      counted = !(await markerWindow(m, unheard, seconds)).late;
      if (counted) break;
    }
    assert.ok(counted, 'the weakened window was late at every length');
  } finally {
    await stopMachine(m);
  }
});

test('an act the boundary refused is no act: the window is not late for its missing row', async () => {
  // weakened: the act's raw status read as its answer (a resident refusal reads 0)
  const raw = weakened('../verify/noninterference/observe.js', 'asExecutable(act, await call(m, act))', 'await call(m, act)');
  const { eventWindow: rawWindow } = (await import(raw)) as { eventWindow: typeof eventWindow };
  const m = await startMachine('A', [], 4242, { mode: 'least-privilege', birthCeiling: 'exec' });
  try {
    // the agent removed ai-peer: the window's memory act on it is refused
    const remove: Call = { seat: PRINCIPAL, target: '@adminvm', service: qrexecService('remove', 'ai-peer'), payload: '' };
    const removed = asExecutable(remove, await rawCall(m, remove));
    assert.equal(removed.status, 0, `${removed.stdout} ${removed.stderr}`);
    // longer windows on a loaded machine, as the check tries them
    let r = await eventWindow(m, rawCall, 6);
    for (const seconds of [15, 40]) if (r.late) r = await eventWindow(m, rawCall, seconds);
    assert.equal(r.observation.status, 0, r.observation.stderr);
    assert.ok(!r.acts.some((a) => a.qube === 'ai-peer'), JSON.stringify(r.acts));
    assert.equal(r.late, false, r.observation.stdout);
    // the weakened one waits for a row no window can hold: late at any length
    const w = await rawWindow(m, rawCall, 6);
    assert.ok(w.acts.some((a) => a.qube === 'ai-peer'), JSON.stringify(w.acts));
    assert.equal(w.late, true, w.observation.stdout);
  } finally {
    await stopMachine(m);
  }
});

test('a refused window is compared as it is, not late', async () => {
  // weakened: the window's raw status read as its answer
  const raw = weakened('../verify/noninterference/observe.js', 'asExecutable(windowCall, o).status === 0', 'o.status === 0');
  const { eventWindow: rawWindow } = (await import(raw)) as { eventWindow: typeof eventWindow };
  const m = await startMachine('A', [], 4242, { mode: 'least-privilege', birthCeiling: 'exec' });
  try {
    // a window of no seconds: the service refuses it at once
    const refused = (on: Machine, c: Call): Promise<Observation> => rawCall(on, c.service.startsWith('qmcp.Events+') ? { ...c, service: qrexecService('events', '0') } : c);
    const r = await eventWindow(m, refused, 6);
    const window: Call = { seat: PRINCIPAL, target: '@adminvm', service: qrexecService('events', '0'), payload: '' };
    assert.equal(asExecutable(window, r.observation).status, 126, JSON.stringify(r.observation));
    assert.equal(r.late, false, r.observation.stdout);
    assert.equal((await rawWindow(m, refused, 6)).late, true);
  } finally {
    await stopMachine(m);
  }
});
