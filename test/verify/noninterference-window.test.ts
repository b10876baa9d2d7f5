/**
 * The noninterference check's event window counts only when the marker dom0
 * sets after every act came through in it; a window the acts outlast is
 * late, tried again longer, never compared.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Call, Observation } from '../../verify/noninterference/calls.js';
import { rawCall } from '../../verify/noninterference/calls.js';
import type { Machine } from '../../verify/noninterference/machines.js';
import { startMachine, stopMachine } from '../../verify/noninterference/machines.js';
import { eventWindow } from '../../verify/noninterference/observe.js';

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
