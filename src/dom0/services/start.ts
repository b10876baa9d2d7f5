/** qmcp.Start+QUBE: start a visible, complete qube the agent has exec over. */
import { QubesdError } from '../qubesd.js';
import type { ServiceSpec } from '../service/run.js';
import { ActionableError, ServiceRefusal } from '../service/refusal.js';
import { powerState } from './reads.js';
import { parseQubeArgument } from './shapes.js';

/** Qubes failures worth telling the agent; each concerns only the qube it named. */
const ACTIONABLE: Readonly<Record<string, [string, string]>> = {
  QubesNoTemplateError: ['no_template', 'the qube has no usable template'],
  QubesMemoryError: ['insufficient_memory', 'not enough free memory to start the qube'],
};

export const startService: ServiceSpec<{ name: string }> = {
  operation: 'start',
  changesState: true,
  parse: parseQubeArgument,
  targets: (input) => [{ name: input.name, tier: 'exec' }],
  reads: 'named',
  async handle({ qubesd, snapshot, targets }): Promise<{ name: string; state: string }> {
    const q = targets[0];
    if (!q) throw new ServiceRefusal('no target');
    // An incomplete qube (still being created) is hidden by the snapshot, so it never gets here; one
    // entombed since the snapshot is caught here, and one entombed after this by qubesd (prohibit-start).
    if (!(await snapshot.recheck(qubesd, q.name, 'exec'))) throw new ServiceRefusal('hidden since the snapshot');
    try {
      // already running or paused is not an error, as in Qubes
      await qubesd.call('admin.vm.Start', q.name);
    } catch (err) {
      if (!(err instanceof QubesdError)) throw err;
      if (!(await snapshot.recheck(qubesd, q.name, 'exec'))) throw new ServiceRefusal(`hidden while starting: ${err.errorClass}`);
      const known = ACTIONABLE[err.errorClass];
      if (known) throw new ActionableError(known[0], known[1]);
      if (err.errorClass === 'QubesException' || err.errorClass === 'QubesVMError') {
        throw new ActionableError('start_failed', 'the qube could not be started');
      }
      throw err;
    }
    return { name: q.name, state: await powerState(qubesd, q.name) };
  },
};
