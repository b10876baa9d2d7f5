/**
 * qmcp.Renew+QUBE (the tier that may start it): the qube's lease runs
 * again from now, for the default lease or the seconds asked, up to the
 * operator's maximum. Under the budget lock, which the reaper's expiry
 * takes too, so a renewal and an expiry never interleave. A lease already
 * over is not brought back: that qube is ending as a remove would.
 */
import { isQubeName } from '../../shared/names.js';
import { LEASE_FEATURE, expiryAt, parseExpiry } from '../../shared/model/lease.js';
import type { WriteDeps } from '../create/deps.js';
import { jsonObject } from '../create/input.js';
import { renewLease } from '../create/lease.js';
import { takeBudgetLock } from '../create/lock.js';
import { leaseOf } from '../leases/feature.js';
import { ActionableError, ServiceRefusal } from '../service/refusal.js';
import type { ServiceSpec } from '../service/run.js';

export interface RenewInput {
  readonly qube: string;
  /** Seconds from now; null lifts the lease (the operator's settings say none). */
  readonly seconds: number | null;
}

export function renewService(deps: WriteDeps): ServiceSpec<RenewInput> {
  return {
    operation: 'renew',
    changesState: true,
    parse(argument, payload) {
      if (!isQubeName(argument)) return null;
      const o = jsonObject(payload, [], ['seconds']);
      if (!o) return null;
      const seconds = renewLease(deps.settings().lease, o['seconds']);
      return seconds === undefined ? null : { qube: argument, seconds };
    },
    targets: (i) => [{ name: i.qube, tier: 'exec' }],
    reads: 'named',
    async handle({ input, qubesd, snapshot }) {
      const lock = await takeBudgetLock(deps);
      if (!lock) throw new ServiceRefusal('budget lock busy');
      try {
        // Entombed since the snapshot (a lapse the reaper just ended): the uniform refusal.
        if (!(await snapshot.recheck(qubesd, input.qube, 'exec'))) throw new ServiceRefusal('hidden since the snapshot');
        const current = await leaseOf(qubesd, input.qube);
        if (current === null) throw new ActionableError('no_lease', 'the qube has no lease to renew: it does not expire');
        const now = deps.now();
        const at = parseExpiry(current);
        if (at === null || at.getTime() <= now.getTime()) throw new ServiceRefusal('lease over or unreadable');
        if (input.seconds === null) await qubesd.call('admin.vm.feature.Remove', input.qube, LEASE_FEATURE);
        else await qubesd.call('admin.vm.feature.Set', input.qube, LEASE_FEATURE, expiryAt(now, input.seconds));
        const back = await leaseOf(qubesd, input.qube);
        if (back !== (input.seconds === null ? null : expiryAt(now, input.seconds))) throw new Error('lease read back differs');
        return { name: input.qube, lease_expires: back };
      } finally {
        await lock.release();
      }
    },
  };
}
