/**
 * The live sessions' notifications count only when the feed's first window
 * held the marker dom0 sets after every act: a first window without it is
 * late (the acts may be split between windows), tried again, never compared.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startMachine, stopMachine } from '../../verify/noninterference/machines.js';
import { liveSessions } from '../../verify/noninterference/notifications.js';
import { weakened } from '../plans/helpers.js';

test("a feed window that held the marker counts, with both sessions told of it; one without it is late", async () => {
  const m = await startMachine('A', [], 4242, { mode: 'least-privilege', birthCeiling: 'exec' });
  // weakened: the marker is not asked, so any first window counts
  const deaf = weakened('../verify/noninterference/notifications.js', "(marker !== undefined && !first.some((r) => r.qube === marker && r.event === 'property-changed'))", 'false');
  const { liveSessions: weakSessions } = (await import(deaf)) as { liveSessions: typeof liveSessions };
  try {
    const app = m.host.qubesd.app;
    // the feed's window is subscribed once liveSessions resolves: the label is in it
    const told = await liveSessions(m, [], 6);
    app.setProp(app.mustGet('ai-box'), 'label', 'purple');
    const counted = await told.settle('ai-box');
    assert.equal(counted.late, false);
    for (const era of ['legacy', 'modern'] as const) assert.match(counted[era], /^updated qube:\/\/ai-box -> .*label.*purple/m, counted[era]);
    // nothing set: the window that closes holds no marker
    for (const [make, late] of [[liveSessions, true], [weakSessions, false]] as const) {
      const quiet = await make(m, [], 1);
      assert.equal((await quiet.settle('ai-box')).late, late);
    }
  } finally {
    await stopMachine(m);
  }
});
