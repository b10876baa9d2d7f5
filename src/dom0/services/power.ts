/**
 * qmcp.Shutdown+QUBE and qmcp.Kill+QUBE (exec tier): the same qubesd calls
 * the agent once made through the policy, behind a dom0 service so the
 * action gate can show the operator which qube stops. A shutdown returns at
 * once, as in Qubes without `wait`; an auto-cleanup disposable that stops is
 * removed by Qubes itself.
 */
import { QubesdError } from '../qubesd.js';
import { ActionableError, ServiceRefusal } from '../service/refusal.js';
import type { ServiceSpec } from '../service/run.js';
import { parseQubeArgument } from './shapes.js';

/** Qubes failures worth telling the agent; each concerns only the qube it named. */
const ACTIONABLE: Readonly<Record<string, [string, string]>> = {
  QubesVMNotStartedError: ['not_running', 'the qube is not running'],
  QubesVMNotRunningError: ['not_running', 'the qube is not running'],
};

function powerService(operation: 'shutdown' | 'kill', method: string): ServiceSpec<{ name: string }> {
  return {
    operation,
    changesState: true,
    parse: parseQubeArgument,
    targets: (input) => [{ name: input.name, tier: 'exec' }],
    reads: 'named',
    async handle({ qubesd, snapshot, targets }): Promise<{ name: string }> {
      const q = targets[0];
      if (!q) throw new ServiceRefusal('no target');
      if (!(await snapshot.recheck(qubesd, q.name, 'exec'))) throw new ServiceRefusal('hidden since the snapshot');
      try {
        await qubesd.call(method, q.name);
      } catch (err) {
        if (!(err instanceof QubesdError)) throw err;
        if (!(await snapshot.recheck(qubesd, q.name, 'exec'))) throw new ServiceRefusal(`hidden while stopping: ${err.errorClass}`);
        const known = ACTIONABLE[err.errorClass];
        if (known) throw new ActionableError(known[0], known[1]);
        // qubesd names the qubes still using its network, which may lie outside the agent's world
        if (err.errorClass === 'QubesVMInUseError') throw new ServiceRefusal('running qubes use its network');
        throw err;
      }
      return { name: q.name };
    },
  };
}

export const shutdownService = powerService('shutdown', 'admin.vm.Shutdown');
export const killService = powerService('kill', 'admin.vm.Kill');
