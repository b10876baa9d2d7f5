/**
 * Creates racing at the budget edge, behind a barrier rather than by luck.
 * A new qube counts against the budget once it has the umbrella tag, the
 * last step a create takes under the budget lock; each racer's Admin API
 * client holds that call until no racer is still running, that is, every
 * other one is held there too, has finished, or is waiting for the budget
 * lock. With the lock, the holder goes on as soon as the rest queue behind
 * it; without it, every create reaches the barrier having checked the
 * budget before any of them counted, so all pass the cap together. No clock
 * decides either outcome.
 */
import { acquireBudgetLock } from '../../src/dom0/create/lock.js';
import type { HeldLock } from '../../src/dom0/lockfile.js';
import { Qubesd } from '../../src/dom0/qubesd.js';

type State = 'running' | 'locking' | 'held' | 'done';

/**
 * Racers held at one point until none is still running: every other one is
 * held there too, is waiting for a lock, or has finished. Then all held go on.
 */
export class Barrier {
  private readonly states: State[];
  private waiting: (() => void)[] = [];

  constructor(racers: number) {
    this.states = Array.from({ length: racers }, () => 'running');
  }

  /** Racer i waits at the barrier. */
  async hold(i: number): Promise<void> {
    const released = new Promise<void>((resolve) => this.waiting.push(resolve));
    this.enter(i, 'held');
    await released;
  }

  /** Racer i waits for a lock: it holds no one up meanwhile. */
  locking(i: number): void {
    this.enter(i, 'locking');
  }

  /** Racer i has its lock and runs again. */
  running(i: number): void {
    this.states[i] = 'running';
  }

  done(i: number): void {
    this.enter(i, 'done');
  }

  private enter(i: number, state: State): void {
    this.states[i] = state;
    if (this.states.includes('running')) return;
    const go = this.waiting;
    this.waiting = [];
    for (let j = 0; j < this.states.length; j++) if (this.states[j] === 'held') this.states[j] = 'running';
    for (const resolve of go) resolve();
  }
}

/** What one racing create's call runs with. */
export interface Racer {
  /** The Admin API client for the call: holds the umbrella tag's set at the barrier. */
  readonly qubesd: Qubesd;
  /** The real budget lock, watched, so a create waiting for it does not hold up the barrier. */
  readonly budgetLock: (root: string, waitMs: number) => Promise<HeldLock | null>;
}

class HoldingQubesd extends Qubesd {
  constructor(
    socketPath: string,
    private readonly before: (method: string, arg: string) => Promise<void>,
  ) {
    super(socketPath);
  }

  override async call(method: string, dest: string, arg = '', payload?: string | Buffer): Promise<string> {
    await this.before(method, arg);
    return super.call(method, dest, arg, payload);
  }
}

/** Runs every call at once, each as a racer; resolves to their results in order. */
export async function raceCreates<T>(socketPath: string, umbrella: string, calls: readonly ((racer: Racer) => Promise<T>)[]): Promise<T[]> {
  const barrier = new Barrier(calls.length);
  const racer = (i: number): Racer => ({
    qubesd: new HoldingQubesd(socketPath, async (method, arg) => {
      if (method !== 'admin.vm.tag.Set' || arg !== umbrella) return;
      await barrier.hold(i);
    }),
    budgetLock: async (root, waitMs) => {
      barrier.locking(i);
      try {
        return await acquireBudgetLock(root, waitMs);
      } finally {
        barrier.running(i);
      }
    },
  });
  return Promise.all(
    calls.map(async (call, i) => {
      try {
        return await call(racer(i));
      } finally {
        barrier.done(i);
      }
    }),
  );
}
