/**
 * The noninterference check's event window counts only when every act's
 * row came through in it, the marker dom0 sets after them included; a
 * window the acts outlast is late, tried again longer, never compared.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Call, Observation } from '../../verify/noninterference/calls.js';
import { rawCall } from '../../verify/noninterference/calls.js';
import type { Machine } from '../../verify/noninterference/machines.js';
import { startMachine, stopMachine } from '../../verify/noninterference/machines.js';
import { eventWindow } from '../../verify/noninterference/observe.js';
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
