/**
 * One qmcp.Events window on a fresh world, with dom0's acts inside it. The
 * window is a fixed span the service times itself, so whether every act's
 * event arrived before it closed is decided by the events, not the clock:
 * after the acts, dom0 sets a marker (a visible qube's label), whose event
 * can only come after all of theirs. A window without the marker proves
 * nothing; the acts are done again on a fresh world in a longer window, so
 * a loaded machine makes the test slower, never red.
 */
import { json, startWorld } from './helpers.js';
import type { Reply, World, WorldOptions } from './helpers.js';

/** Window lengths tried in turn, seconds (the service takes at most 60). */
export const WINDOW_SECONDS: readonly number[] = [2, 10, 60];

const MARKER_QUBE = 'ai-gw';
const MARKER_EVENT = 'property-changed';

export interface EventRow {
  readonly event: string;
  readonly subject: string;
  readonly class: string | null;
  readonly time: string;
  readonly property?: string;
  readonly value?: unknown;
}

export interface EventWindow {
  /** The world the window ran on, still open: the caller closes it. */
  readonly world: World;
  /** The reply as the principal got it, marker included. */
  readonly reply: Reply;
  /** Its event rows without the marker's. */
  readonly rows: EventRow[];
  readonly truncated: boolean;
  /** The window's length, seconds. */
  readonly seconds: number;
}

/** Runs `act` as dom0 inside a window; see above. `closed` resolves once the window has answered. */
export async function eventWindow(opts: WorldOptions, act: (world: World, closed: Promise<unknown>) => Promise<void>, seconds: readonly number[] = WINDOW_SECONDS): Promise<EventWindow> {
  for (const length of seconds) {
    const world = await startWorld(opts);
    let kept = false;
    try {
      const listeners = (world.qubesd.app as unknown as { listeners: Set<unknown> }).listeners;
      const idle = listeners.size;
      const pending = world.call(`qmcp.Events+${length}`);
      // act once the service has subscribed
      while (listeners.size === idle) await new Promise((r) => setTimeout(r, 20));
      await act(world, pending);
      world.qubesd.app.setProp(world.qubesd.app.mustGet(MARKER_QUBE), 'label', 'purple');
      const reply = await pending;
      if (reply.status !== 0) throw new Error(`qmcp.Events+${length} failed: ${reply.stderr.toString()}`);
      const body = json(reply) as { events: EventRow[]; truncated: boolean };
      const last = body.events.at(-1);
      if (last?.subject !== MARKER_QUBE || last.event !== MARKER_EVENT) continue;
      kept = true;
      return { world, reply, rows: body.events.slice(0, -1), truncated: body.truncated, seconds: length };
    } finally {
      if (!kept) await world.close();
    }
  }
  throw new Error(`the marker never arrived inside a window of ${seconds.at(-1)} s`);
}
