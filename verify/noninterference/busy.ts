/**
 * An operator at work outside the agent's world while the agent's calls
 * run: qubes created, tagged, started, stopped and removed in a loop,
 * through dom0's own Admin API calls, a few actions begun with each call.
 * Its machine must still answer every call as the quiet one does.
 */
import { Qubesd } from '../../src/dom0/qubesd.js';
import type { Machine } from './machines.js';

export interface BusyOperator {
  /**
   * A call on the machine starts: the operator may take the next
   * ACTIONS_PER_CALL actions, begun with the call, so every call races
   * them rather than a loop that runs as fast as the host lets it.
   */
  callStarts(): void;
  /** Stops after the action in flight; resolves to the number of actions done. */
  stop(): Promise<number>;
}

/** Actions the operator may take from the start of each call: a create, tag, start, untag, kill and remove in all. */
export const ACTIONS_PER_CALL = 6;

/** Outside names the busy operator cycles through: never in the reserved prefix, never one a call names. */
const BUSY_NAMES = ['op-busy0', 'op-busy1', 'op-busy2'] as const;

/** Whether a qube is one the busy operator made (for a weakened variant that leaks them). */
export function isBusyQube(name: string): boolean {
  return (BUSY_NAMES as readonly string[]).includes(name);
}

/** TAG is what the operator's qubes carry for a while: an operator tag, or another principal's umbrella (they enter and leave its world). */
export function busyOperator(m: Machine, tag = 'work'): BusyOperator {
  const dom0 = new Qubesd(m.host.qubesd.socketPath);
  let stopping = false;
  let done = 0;
  let allowed = 0;
  let granted = (): void => undefined;
  let grant = new Promise<void>((resolve) => (granted = resolve));
  // a step qubesd refuses (say, too little memory to start) is the operator's problem, not the check's
  const step = async (method: string, dest: string, arg = '', payload?: string): Promise<void> => {
    while (allowed === 0 && !stopping) await grant;
    allowed = Math.max(0, allowed - 1);
    try {
      await dom0.call(method, dest, arg, payload);
      done++;
    } catch {
      // carry on with the next step
    }
  };
  const act = async (name: string): Promise<void> => {
    await step('admin.vm.Create.AppVM', 'dom0', 'debian', `name=${name} label=red`);
    for (const [method, arg] of [
      ['admin.vm.tag.Set', tag],
      ['admin.vm.Start', ''],
      ['admin.vm.tag.Remove', tag],
    ] as const) {
      if (!stopping) await step(method, name, arg);
    }
    await step('admin.vm.Kill', name);
    await step('admin.vm.Remove', name);
  };
  // two qubes in flight at once, so a removal can land between any two reads of a call
  const loops = BUSY_NAMES.slice(0, 2).map(async (name) => {
    while (!stopping) await act(name);
  });
  return {
    callStarts() {
      allowed = ACTIONS_PER_CALL;
      granted();
      grant = new Promise<void>((resolve) => (granted = resolve));
    },
    async stop() {
      stopping = true;
      granted();
      await Promise.all(loops);
      return done;
    },
  };
}
