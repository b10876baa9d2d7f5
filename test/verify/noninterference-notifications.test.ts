/**
 * The live sessions' notifications count only when the feed's first window
 * held every act's row, the marker dom0 sets after them included: a first
 * window without one of them is late (the acts may be split between
 * windows), tried again, never compared.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startMachine, stopMachine } from '../../verify/noninterference/machines.js';
import { liveSessions } from '../../verify/noninterference/notifications.js';
import { weakened } from '../plans/helpers.js';

const MARKER = { qube: 'ai-box', event: 'property-changed' };

test('a feed window that held every act counts, with both sessions told of it; one without an act is late', async () => {
  const m = await startMachine('A', [], 4242, { mode: 'least-privilege', birthCeiling: 'exec' });
  // weakened: the rows are not asked, so any first window counts
  const deaf = weakened('../verify/noninterference/notifications.js', '!holdsEvery(first, acts)', 'false');
  // weakened: only the last act's row (the marker's) is asked
  const markerOnly = weakened('../verify/noninterference/notifications.js', '!holdsEvery(first, acts)', '!holdsEvery(first, acts.slice(-1))');
  const load = async (href: string): Promise<typeof liveSessions> => ((await import(href)) as { liveSessions: typeof liveSessions }).liveSessions;
  const [deafSessions, markerSessions] = [await load(deaf), await load(markerOnly)];
  try {
    const app = m.host.qubesd.app;
    // the feed's window is subscribed once liveSessions resolves: the label is in it
    const told = await liveSessions(m, [], 6);
    app.setProp(app.mustGet('ai-box'), 'label', 'purple');
    const counted = await told.settle([MARKER]);
    assert.equal(counted.late, false);
    for (const era of ['legacy', 'modern'] as const) assert.match(counted[era], /^updated qube:\/\/ai-box -> .*label.*purple/m, counted[era]);
    // nothing set: the window that closes holds no marker
    for (const [make, late] of [[liveSessions, true], [deafSessions, false]] as const) {
      const quiet = await make(m, [], 1);
      assert.equal((await quiet.settle([MARKER])).late, late);
    }
    // the marker came through, an act's row did not (a start that made no event): late, however the marker looks
    for (const [make, late] of [[liveSessions, true], [markerSessions, false]] as const) {
      const split = await make(m, [], 6);
      app.setProp(app.mustGet('ai-box'), 'label', 'red');
      assert.equal((await split.settle([{ qube: 'ai-execbox', event: 'started' }, MARKER])).late, late);
    }
  } finally {
    await stopMachine(m);
  }
});
