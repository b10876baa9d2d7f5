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
  const states: State[] = calls.map(() => 'running');
  let waiting: (() => void)[] = [];
  const settle = (): void => {
    if (states.includes('running')) return;
    const go = waiting;
    waiting = [];
    for (let i = 0; i < states.length; i++) if (states[i] === 'held') states[i] = 'running';
    for (const resolve of go) resolve();
  };
  const enter = (i: number, state: State): void => {
    states[i] = state;
    settle();
  };
  const racer = (i: number): Racer => ({
    qubesd: new HoldingQubesd(socketPath, async (method, arg) => {
      if (method !== 'admin.vm.tag.Set' || arg !== umbrella) return;
      const released = new Promise<void>((resolve) => waiting.push(resolve));
      enter(i, 'held');
      await released;
    }),
    budgetLock: async (root, waitMs) => {
      enter(i, 'locking');
      try {
        return await acquireBudgetLock(root, waitMs);
      } finally {
        states[i] = 'running';
      }
    },
  });
  return Promise.all(
    calls.map(async (call, i) => {
      try {
        return await call(racer(i));
      } finally {
        enter(i, 'done');
      }
    }),
  );
}
